/**
 * The records of a user's erasure (migration 013) and the rule they enforce: once an erasure is
 * recorded, no event of that user that occurred up to its instant (`erased_through`) is ever stored
 * again. Ingestion checks every batch's users here, holding what it read until it commits, so an
 * erasure's record and a batch of the user's old events are always ordered: the batch commits first
 * (and the erasure then deletes what it stored) or it sees the record and drops those events. Events
 * that occurred after the erasure are a new life of the same id and are stored.
 *
 * What the erasure itself removes when it begins: the user's summary row (`users`), clicked aliases and
 * receipts. Their interaction rows, hot and archived, go message by message through each message's
 * actor (src/privacy/eraseMessage.ts), and a message's `user_messages` pair with them.
 */
import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import { backOff } from 'exponential-backoff';
import type { Db } from '../db/knex';
import { ER_DUP_ENTRY, sqlErrno } from '../dataplane/sql';
import { isDeadlock } from '../storage/deadlock';
import type { MessageKind, MessageRef } from '../shared/types';

/** How the erasure records name a user: never the id itself. */
export function userHash(userId: string): Buffer {
  return createHash('sha256').update(userId, 'utf8').digest();
}

export type ErasureStatus = 'running' | 'done' | 'failed';

export interface ErasureBegun {
  requestId: string;
  erasedThrough: string;
  /** False when the request was recorded before (a retry, or the same request sent again). */
  created: boolean;
  messages: number;
}

export interface ErasureCounts {
  hotRows: number;
  archivedRows: number;
  chunksRead: number;
  chunksRewritten: number;
  bytesRewritten: number;
}

export interface ErasureView extends ErasureCounts {
  requestId: string;
  /** The user while the erasure runs; null once done (the request then keeps only a hash of it). */
  userId: string | null;
  status: ErasureStatus;
  requestedBy: string;
  requestedAt: string;
  erasedThrough: string;
  completedAt: string | null;
  messages: { total: number; done: number; failed: number };
  error: string | null;
}

type Q = Knex | Knex.Transaction;

const iso = (v: string | Date | null): string | null => {
  if (v === null) return null;
  const d = v instanceof Date ? v : new Date(`${v.replace(' ', 'T')}Z`);
  return d.toISOString();
};

const toSql = (isoText: string) => `${isoText.slice(0, 10)} ${isoText.slice(11, 23)}`;

/** Receipts are deleted per message in statements of this many messages. */
const MESSAGES_PER_STATEMENT = 500;

/**
 * Records the erasure and removes the user's summaries, in one transaction: from its commit on,
 * ingestion refuses the user's old events (erasedThroughOf). Idempotent per request id.
 */
export async function beginErasure(db: Db, input: { requestId: string; userId: string; requestedBy: string }): Promise<ErasureBegun> {
  const hash = userHash(input.userId);
  // The same request begun twice at once: one transaction records it, the other is rolled back (a
  // deadlock, or the request's key taken) and then finds it recorded.
  return backOff(() => beginOnce(db, input, hash), {
    numOfAttempts: 5,
    startingDelay: 40,
    jitter: 'full',
    retry: (err) => isDeadlock(err) || sqlErrno(err) === ER_DUP_ENTRY,
  });
}

async function beginOnce(db: Db, input: { requestId: string; userId: string; requestedBy: string }, hash: Buffer): Promise<ErasureBegun> {
  return db.transaction(async (trx) => {
    const known = await trx('erasure_requests')
      .where({ request_id: input.requestId })
      .forUpdate()
      .first<{ erased_through: string; messages_total: number; user_hash: Buffer } | undefined>(
        'erased_through',
        'messages_total',
        'user_hash',
      );
    if (known) {
      if (!Buffer.from(known.user_hash).equals(hash)) throw new ErasureConflictError(`erasure ${input.requestId} is of another user`);
      return {
        requestId: input.requestId,
        erasedThrough: iso(known.erased_through) as string,
        created: false,
        messages: known.messages_total,
      };
    }
    // The host's clock, in UTC as every event's occurred_at is stored (the server's zone may be another).
    const now = { at: toSql(new Date().toISOString()) };
    // First, so that a batch of the user's events under way is waited for (it holds its read of this
    // row's place) and one after it sees the record.
    await trx.raw(
      'INSERT INTO erased_users (user_hash, erased_through, request_id) VALUES (?, ?, ?) ' +
        'ON DUPLICATE KEY UPDATE request_id = IF(VALUES(erased_through) > erased_through, VALUES(request_id), request_id), ' +
        'erased_through = GREATEST(erased_through, VALUES(erased_through))',
      [hash, now.at, input.requestId],
    );
    const messages = await trx('user_messages')
      .where({ user_id: input.userId })
      .forUpdate()
      .orderBy(['message_kind', 'message_id'])
      .select<{ message_kind: MessageKind; message_id: string }[]>('message_kind', 'message_id');
    await trx('erasure_requests').insert({
      request_id: input.requestId,
      user_id: input.userId,
      user_hash: hash,
      requested_by: input.requestedBy.slice(0, 255),
      requested_at: now.at,
      erased_through: now.at,
      status: 'running',
      messages_total: messages.length,
    });
    for (let i = 0; i < messages.length; i += MESSAGES_PER_STATEMENT) {
      const part = messages.slice(i, i + MESSAGES_PER_STATEMENT);
      await trx('erasure_messages').insert(part.map((m) => ({ request_id: input.requestId, ...m })));
      await trx('user_message_receipts')
        .where({ user_id: input.userId })
        .whereIn(
          ['message_kind', 'message_id'],
          part.map((m) => [m.message_kind, m.message_id]),
        )
        .delete();
    }
    await trx('users').where({ id: input.userId }).delete();
    await trx('user_clicked_aliases').where({ user_id: input.userId }).delete();
    return { requestId: input.requestId, erasedThrough: iso(now.at) as string, created: true, messages: messages.length };
  });
}

export class ErasureConflictError extends Error {
  override name = 'ErasureConflictError';
}

/** The running erasure of this user, if one is running: a second request for them attaches to it. */
export async function runningErasureOf(db: Db, userId: string): Promise<string | null> {
  const row = await db('erasure_requests')
    .where({ user_hash: userHash(userId), status: 'running' })
    .orderBy('requested_at')
    .first<{ request_id: string } | undefined>('request_id');
  return row?.request_id ?? null;
}

/**
 * Inside ingestion's transaction: until when each of these users' events are erased, for those that
 * have an erasure record. Read in share mode and held until the batch commits (see the header).
 */
export async function erasedThroughOf(
  query: <T>(sql: string, values: readonly string[]) => Promise<T>,
  userIds: readonly string[],
): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  if (userIds.length === 0) return found;
  const byHash = new Map<string, string>();
  for (const u of userIds) byHash.set(userHash(u).toString('hex'), u);
  // Sorted, so concurrent batches take the locks in one order.
  const hashes = [...byHash.keys()].sort();
  const rows = await query<{ user_hash: Buffer; erased_through: string }[]>(
    `SELECT user_hash, erased_through FROM erased_users WHERE user_hash IN (${hashes.map(() => 'UNHEX(?)').join(', ')}) LOCK IN SHARE MODE`,
    hashes,
  );
  for (const r of rows) {
    const user = byHash.get(Buffer.from(r.user_hash).toString('hex'));
    if (user !== undefined) found.set(user, iso(r.erased_through) as string);
  }
  return found;
}

/** The messages of a request whose erasure has not been recorded yet, in order, `limit` at most. */
export async function pendingErasureMessages(db: Db, requestId: string, limit: number): Promise<MessageRef[]> {
  const rows = await db('erasure_messages')
    .where({ request_id: requestId, status: 'pending' })
    .orderBy(['message_kind', 'message_id'])
    .limit(limit)
    .select<{ message_kind: MessageKind; message_id: string }[]>('message_kind', 'message_id');
  return rows.map((r) => ({ kind: r.message_kind, id: r.message_id }));
}

/** Records one message's part of the erasure; a repeated record of a done message changes nothing. */
export async function recordMessageErased(
  q: Q,
  requestId: string,
  ref: MessageRef,
  outcome: { counts: ErasureCounts } | { error: string },
): Promise<void> {
  const where = { request_id: requestId, message_kind: ref.kind, message_id: ref.id };
  if ('error' in outcome) {
    await q('erasure_messages')
      .where(where)
      .whereNot({ status: 'done' })
      .update({ status: 'failed', error: outcome.error.slice(0, 4000) });
    return;
  }
  const c = outcome.counts;
  await q('erasure_messages')
    .where(where)
    .whereNot({ status: 'done' })
    .update({
      status: 'done',
      hot_rows: c.hotRows,
      archived_rows: c.archivedRows,
      chunks_read: c.chunksRead,
      chunks_rewritten: c.chunksRewritten,
      bytes_rewritten: c.bytesRewritten,
      error: null,
      done_at: q.raw('CURRENT_TIMESTAMP(3)'),
    });
}

/**
 * Deletes the user's hot rows of the message in `table` that occurred up to `through` (later ones are
 * a new life), naming the message, as a shared table holds other messages' rows. Returns how many.
 */
export async function deleteErasedHotRows(q: Q, table: string, ref: MessageRef, userId: string, through: string): Promise<number> {
  return q(table).where({ message_kind: ref.kind, message_id: ref.id, user_id: userId }).andWhere('occurred_at', '<=', through).delete();
}

/**
 * The users whose erasure could not be done in this message (its part `failed`, the request keeping the
 * id until it is done), with the instant each is erased through: a restore of the message removes their
 * rows again as it brings the others back, so that an erasure that failed never turns into rows
 * resurrected.
 */
export async function unfinishedErasuresOf(q: Q, ref: MessageRef): Promise<{ userId: string; erasedThrough: string }[]> {
  const rows = await q('erasure_messages as m')
    .join('erasure_requests as r', 'r.request_id', 'm.request_id')
    .where({ 'm.message_kind': ref.kind, 'm.message_id': ref.id, 'm.status': 'failed' })
    .whereNot('r.user_id', '')
    .select<{ user_id: string; erased_through: string }[]>('r.user_id', 'r.erased_through');
  return rows.map((r) => ({ userId: r.user_id, erasedThrough: r.erased_through }));
}

/** Route patterns whose audit target is a user id. */
const USER_ROUTES = ['/v1/users/:id', '/v1/users/:id/interactions'];

/**
 * After every message: what is left of the user goes (pairs of messages the request did not list,
 * e.g. one the user's last old event reached while the request began), the audit trail's mentions of
 * the id become a reference to the request, and the request forgets the id (it keeps its hash).
 */
export async function finishErasure(db: Db, requestId: string): Promise<ErasureView> {
  const request = await db('erasure_requests')
    .where({ request_id: requestId })
    .first<{ user_id: string; status: string; erased_through: string } | undefined>('user_id', 'status', 'erased_through');
  if (!request) throw new Error(`no erasure ${requestId}`);
  if (request.status === 'running') {
    const failed = await db('erasure_messages').where({ request_id: requestId, status: 'failed' }).count<{ n: number }[]>('* as n');
    const failures = Number(failed[0].n);
    await db.transaction(async (trx) => {
      await trx('audit_log')
        .whereIn('route', USER_ROUTES)
        .andWhere({ target: request.user_id })
        .update({ target: `erased user (erasure ${requestId})` });
      await trx('erasure_requests')
        .where({ request_id: requestId })
        .update(
          failures > 0
            ? {
                status: 'failed',
                error: `${failures} message(s) could not be erased; see erasure_messages`,
                completed_at: trx.raw('CURRENT_TIMESTAMP(3)'),
              }
            : { status: 'done', user_id: '', completed_at: trx.raw('CURRENT_TIMESTAMP(3)') },
        );
    });
  }
  return (await erasureView(db, requestId)) as ErasureView;
}

export async function erasureView(db: Db, requestId: string): Promise<ErasureView | null> {
  const r = await db('erasure_requests').where({ request_id: requestId }).first<
    | {
        user_id: string;
        status: ErasureStatus;
        requested_by: string;
        requested_at: string;
        erased_through: string;
        completed_at: string | null;
        messages_total: number;
        error: string | null;
      }
    | undefined
  >();
  if (!r) return null;
  const [sums] = await db('erasure_messages')
    .where({ request_id: requestId })
    .select<Record<string, string | number | null>[]>(
      db.raw("SUM(status = 'done') AS done"),
      db.raw("SUM(status = 'failed') AS failed"),
      db.raw('SUM(hot_rows) AS hot_rows'),
      db.raw('SUM(archived_rows) AS archived_rows'),
      db.raw('SUM(chunks_read) AS chunks_read'),
      db.raw('SUM(chunks_rewritten) AS chunks_rewritten'),
      db.raw('SUM(bytes_rewritten) AS bytes_rewritten'),
    );
  const n = (k: string) => Number(sums?.[k] ?? 0);
  return {
    requestId,
    userId: r.user_id === '' ? null : r.user_id,
    status: r.status,
    requestedBy: r.requested_by,
    requestedAt: iso(r.requested_at) as string,
    erasedThrough: iso(r.erased_through) as string,
    completedAt: iso(r.completed_at),
    messages: { total: Number(r.messages_total), done: n('done'), failed: n('failed') },
    hotRows: n('hot_rows'),
    archivedRows: n('archived_rows'),
    chunksRead: n('chunks_read'),
    chunksRewritten: n('chunks_rewritten'),
    bytesRewritten: n('bytes_rewritten'),
    error: r.error,
  };
}
