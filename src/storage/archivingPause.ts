/**
 * The archiving brake: one durable switch, in MySQL, that every worker reads. While it is paused no
 * archive or sweep moves a row: an actor whose data falls due counts its references as usual and, when
 * nothing references the data any more, keeps it available and waits, noted in `archiving_holds`, with
 * the pause as its reason (workflows/lifecycleMachine.ts); an archive already moving rows stops after its
 * current chunk and resumes from its cursor once archiving resumes. Restores are not braked by it.
 */
import { timeOf } from '../dataplane/sql';
import type { Db } from '../db/knex';
import type { ArchivingHold, MessageRef } from '../shared/types';

export type { ArchivingHold } from '../shared/types';

export interface ArchivingPause {
  paused: boolean;
  /** Who paused or last resumed archiving; null before anyone has. */
  changedBy: string | null;
  changedAt: string | null;
  reason: string | null;
}

const NEVER_CHANGED: ArchivingPause = { paused: false, changedBy: null, changedAt: null, reason: null };

const REASON_MAX = 1000;

export async function readArchivingPause(db: Db): Promise<ArchivingPause> {
  const row = await db('archiving_pause')
    .where({ id: 1 })
    .first<{ paused: number; changed_by: string; changed_at: Date | string; reason: string | null } | undefined>();
  if (!row) return NEVER_CHANGED;
  return {
    paused: Boolean(row.paused),
    changedBy: row.changed_by,
    changedAt: timeOf(row.changed_at)?.toISOString() ?? null,
    reason: row.reason,
  };
}

/** Pauses or resumes archiving; the switch is idempotent, and the latest change's author is kept. */
export async function setArchivingPause(db: Db, change: { paused: boolean; by: string; reason?: string | null }): Promise<ArchivingPause> {
  const reason = change.reason?.trim() ? change.reason.trim().slice(0, REASON_MAX) : null;
  await db.raw(
    `INSERT INTO archiving_pause (id, paused, changed_by, changed_at, reason) VALUES (1, ?, ?, NOW(3), ?)
     ON DUPLICATE KEY UPDATE paused = VALUES(paused), changed_by = VALUES(changed_by), changed_at = VALUES(changed_at), reason = VALUES(reason)`,
    [change.paused, change.by, reason],
  );
  return readArchivingPause(db);
}

/** The hold an actor due now takes while archiving is paused, or null when it is not. */
export async function holdIfPaused(db: Db, ref: MessageRef, recheckAt: string): Promise<ArchivingHold | null> {
  const pause = await readArchivingPause(db);
  if (!pause.paused) return null;
  await db.raw(
    `INSERT INTO archiving_holds (message_kind, message_id, held_at) VALUES (?, ?, NOW(3))
     ON DUPLICATE KEY UPDATE held_at = VALUES(held_at)`,
    [ref.kind, ref.id],
  );
  return { pausedBy: pause.changedBy ?? 'unknown', pausedAt: pause.changedAt ?? recheckAt, reason: pause.reason, recheckAt };
}

/** The actors held by the pause, oldest first, up to `limit`; resuming wakes them. */
export async function heldMessages(db: Db, limit: number): Promise<MessageRef[]> {
  const rows = await db('archiving_holds').orderBy('held_at').limit(limit).select<{ message_kind: string; message_id: string }[]>();
  return rows.map((r) => ({ kind: r.message_kind as MessageRef['kind'], id: r.message_id }));
}

/**
 * Messages held now: a hold whose message was resumed (active again) or has moved on since is no longer
 * one, though its row stays until the next resume of archiving forgets it.
 */
export async function countHeldMessages(db: Db): Promise<number> {
  const row = await db('archiving_holds as h')
    .join('message_availability as a', function () {
      this.on('a.kind', '=', 'h.message_kind').andOn('a.message_id', '=', 'h.message_id');
    })
    .where('a.state', 'stopped')
    .count<{ n: number | string }[]>({ n: '*' })
    .first();
  return Number(row?.n ?? 0);
}

/** Forgets holds once their actors have been woken (or have archived: a hold is only a hint to wake). */
export async function forgetHolds(db: Db, refs: readonly MessageRef[]): Promise<void> {
  if (refs.length === 0) return;
  await db('archiving_holds')
    .where((q) => {
      for (const r of refs) q.orWhere({ message_kind: r.kind, message_id: r.id });
    })
    .delete();
}

/** Thrown by an archive that found archiving paused: retried, it resumes from its cursor. */
export class ArchivingPausedError extends Error {
  constructor(readonly pause: ArchivingPause) {
    super(
      `archiving is paused (by ${pause.changedBy ?? 'unknown'} at ${pause.changedAt ?? '?'}${pause.reason ? `: ${pause.reason}` : ''}); ` +
        'this archive waits and carries on from its last chunk once `interaction-data archiving resume` is run',
    );
    this.name = 'ArchivingPausedError';
  }
}
