import type { AvailabilityRecord, MessageDetails } from '../../activities/types';
import type { Db } from '../db/knex';
import type { LifecycleState, MessageRef } from '../shared/types';
import { pendingRestoreRequests } from './restoreRequests';

/** MySQL DATETIME(3) in UTC from an ISO instant; the connection runs with timezone 'Z'. */
export function toSqlDatetime(iso: string | null): string | null {
  return iso ? new Date(iso).toISOString().slice(0, 23).replace('T', ' ') : null;
}

export function fromSqlDatetime(value: string | null): string | null {
  return value ? new Date(`${value.replace(' ', 'T')}Z`).toISOString() : null;
}

export async function loadMessageDetails(db: Db, ref: MessageRef): Promise<MessageDetails> {
  const message = await db('messages').where({ kind: ref.kind, id: ref.id }).first<{ name: string | null } | undefined>();
  const tags = (await db('message_tags').where({ kind: ref.kind, message_id: ref.id }).orderBy('tag').pluck('tag')) as string[];
  const row = await db('message_availability')
    .where({ kind: ref.kind, message_id: ref.id })
    .first<
      { state: LifecycleState; stopped_at: string | null; expires_at: string | null; generation: number; revision: string } | undefined
    >();
  const pendingRestores = await pendingRestoreRequests(db, ref);
  return {
    name: message?.name ?? null,
    tags,
    known: message !== undefined || row !== undefined || pendingRestores.length > 0 || (await hasInteractionData(db, ref)),
    pendingRestores,
    persisted: row
      ? {
          state: row.state,
          stoppedAt: fromSqlDatetime(row.stopped_at),
          expiresAt: fromSqlDatetime(row.expires_at),
          generation: Number(row.generation),
          revision: Number(row.revision),
        }
      : null,
  };
}

/** Whether events were ever stored for the message: a hot table of its own, or a generation archived. */
async function hasInteractionData(db: Db, ref: MessageRef): Promise<boolean> {
  const hot = await db('hot_tables')
    .where({ message_kind: ref.kind, message_id: ref.id })
    .first<{ message_id: string } | undefined>('message_id');
  if (hot) return true;
  const archived = await db('archive_manifests')
    .where({ message_kind: ref.kind, message_id: ref.id })
    .first<{ message_id: string } | undefined>('message_id');
  return archived !== undefined;
}

/** Whether anyone ever defined, stopped, restored or sent events for the message. */
export async function isKnownMessage(db: Db, ref: MessageRef): Promise<boolean> {
  const message = await db('messages').where({ kind: ref.kind, id: ref.id }).first<{ id: string } | undefined>('id');
  if (message) return true;
  const row = await db('message_availability')
    .where({ kind: ref.kind, message_id: ref.id })
    .first<{ message_id: string } | undefined>('message_id');
  return row !== undefined || (await hasInteractionData(db, ref));
}

/**
 * Upserts the availability row every interaction-data feature joins on. The revision guard makes a
 * retried older write a no-op once a newer transition has been recorded.
 */
export async function recordAvailability(db: Db, r: AvailabilityRecord): Promise<void> {
  const values = {
    kind: r.kind,
    message_id: r.id,
    state: r.state,
    available: r.available,
    stopped_at: toSqlDatetime(r.stoppedAt),
    expires_at: toSqlDatetime(r.expiresAt),
    generation: r.generation,
    revision: r.revision,
  };
  const newer = (col: string) => db.raw(`IF(VALUES(revision) > revision, VALUES(${col}), ${col})`);
  // Columns before `revision`: MySQL evaluates the assignments left to right.
  await db('message_availability')
    .insert({ ...values, updated_at: db.raw('CURRENT_TIMESTAMP(3)') })
    .onConflict(['kind', 'message_id'])
    .merge({
      state: newer('state'),
      available: newer('available'),
      stopped_at: newer('stopped_at'),
      expires_at: newer('expires_at'),
      generation: newer('generation'),
      updated_at: db.raw('IF(VALUES(revision) > revision, CURRENT_TIMESTAMP(3), updated_at)'),
      revision: db.raw('GREATEST(revision, VALUES(revision))'),
    } as unknown as typeof values);
}
