/** Small SQL helpers shared by the data plane. Everything is parameterised; identifiers are constants. */
import type { Db } from '../db/knex';
import type { MessageKind, MessageRef } from '../shared/types';
import { refKey } from './model';

/** MySQL DATETIME(3) text in UTC (the connection runs with timezone 'Z'). */
export function sqlTime(iso: string | Date): string {
  return (typeof iso === 'string' ? new Date(iso) : iso).toISOString().slice(0, 23).replace('T', ' ');
}

/** A DATETIME(3) column as a Date: mysql2 returns a string with dateStrings, a row made here holds a Date. */
export function timeOf(value: Date | string | null): Date | null {
  if (value === null) return null;
  return value instanceof Date ? value : new Date(isoTime(value) as string);
}

/** Back to ISO-8601, from a DATETIME(3) string as mysql2 returns it with dateStrings. */
export function isoTime(value: string | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  return new Date(`${value.replace(' ', 'T')}Z`).toISOString();
}

const placeholderCache = new Map<string, string>();

/** `(?, ?, ?), (?, ?, ?)` for a multi-row INSERT; remembered, as ingestion asks for the same few shapes. */
export function valuesPlaceholders(rows: number, columns: number): string {
  const key = `${rows}x${columns}`;
  let text = placeholderCache.get(key);
  if (text === undefined) {
    const one = `(${new Array(columns).fill('?').join(', ')})`;
    text = new Array(rows).fill(one).join(', ');
    if (placeholderCache.size < 10_000) placeholderCache.set(key, text);
  }
  return text;
}

/** mysql2 error numbers the data plane reacts to. */
export const ER_DUP_ENTRY = 1062;
export const ER_LOCK_DEADLOCK = 1213;
export const ER_LOCK_WAIT_TIMEOUT = 1205;
export const ER_NO_SUCH_TABLE = 1146;
export const ER_TABLE_DEF_CHANGED = 1412;

export function sqlErrno(err: unknown): number | undefined {
  const errno = (err as { errno?: unknown } | null)?.errno;
  return typeof errno === 'number' ? errno : undefined;
}

/**
 * Runs fn in a read-only transaction: every statement in it reads the same snapshot (InnoDB takes it at
 * the first read), so an availability check and the query that relies on it cannot disagree even if
 * the message's actor flips availability in between.
 */
export function inSnapshot<T>(db: Db, fn: (trx: Db) => Promise<T>): Promise<T> {
  return db.transaction((trx) => fn(trx), { readOnly: true });
}

/**
 * Runs a read of messages' hot tables once more when a table it resolved was dropped before the read
 * got to it (an archive finished in between), or was made after its snapshot began (a migration moving
 * rows registers a table before making it). The second run resolves the tables again, from a snapshot
 * of its own, in which the message is unavailable or has its new table.
 */
export async function rereadIfTableMoved<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    const errno = sqlErrno(err);
    if (errno !== ER_NO_SUCH_TABLE && errno !== ER_TABLE_DEF_CHANGED) throw err;
    return read();
  }
}

/** Availability of each given message; messages without a row have never stopped and are available. */
export interface Availability extends MessageRef {
  state: string;
  available: boolean;
}

export async function availabilityOf(db: Db, refs: readonly MessageRef[]): Promise<Map<string, Availability>> {
  const out = new Map<string, Availability>();
  if (refs.length === 0) return out;
  const rows = (await db('message_availability')
    .select('kind', 'message_id', 'state', 'available')
    .where((q) => {
      for (const r of refs)
        q.orWhere((w) => {
          w.where({ kind: r.kind, message_id: r.id });
        });
    })) as { kind: MessageKind; message_id: string; state: string; available: number | boolean }[];
  for (const r of rows) {
    out.set(refKey({ kind: r.kind, id: r.message_id }), {
      kind: r.kind,
      id: r.message_id,
      state: r.state,
      available: Boolean(Number(r.available)),
    });
  }
  for (const r of refs) {
    if (!out.has(refKey(r))) out.set(refKey(r), { kind: r.kind, id: r.id, state: 'active', available: true });
  }
  return out;
}
