/**
 * Shared by the fault suite: its two sizes, a seeded random source whose seed is printed (so a failing
 * run can be replayed exactly with FAULTS_SEED), and the checks every fault test ends with: a
 * message's rows, wherever they are (hot or in long-term storage), are exactly the rows it started with.
 *
 *   npm run test:faults            the full suite (FAULTS_MODE=full)
 *   npm test                       includes the short variant (FAULTS_MODE=short, the default), the full
 *                                  one when CI is set (CI's `.ci/run`)
 *   FAULTS_SEED=1234 npm run test:faults   replays one run's random choices
 */
import type { ChildProcess } from 'node:child_process';
import type { Db } from '../../src/db/knex';
import type { MessageRef } from '../../src/shared/types';
import { mysqlOnly } from '../../src/archive/mysqlStore';
import type { ArchiveStores, ChunkRecord } from '../../src/archive/store';
import { canonicalBytes, INTERACTION_COLUMNS, sha256, type InteractionRow } from '../../src/storage/chunkCodec';
import { hotRowCount, hotRows } from '../support/stack';

export type FaultsMode = 'short' | 'full';

export const FAULTS_MODE: FaultsMode = process.env.FAULTS_MODE === 'full' ? 'full' : 'short';

/** `short` in a developer's test run, `full` under `npm run test:faults` and in CI. */
export function bySize<T>(sizes: { short: T; full: T }): T {
  return sizes[FAULTS_MODE];
}

/** mulberry32: small, fast, and the same sequence for the same seed on every machine. */
export class Random {
  private state: number;
  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }
}

/** One seed per test file: FAULTS_SEED when set, else a fresh one, always reported. */
export function seededRandom(label: string, report: (msg: string) => void): Random {
  const fromEnv = process.env.FAULTS_SEED ? Number(process.env.FAULTS_SEED) : NaN;
  const seed = Number.isFinite(fromEnv) ? fromEnv : Math.floor(Math.random() * 2 ** 31);
  report(`${label}: seed ${seed} (replay with FAULTS_SEED=${seed}), mode ${FAULTS_MODE}`);
  return new Random(seed);
}

/** Writes to stderr as well as the test's diagnostics: the seed must be visible even if the run hangs. */
export function reporter(diagnostic: (msg: string) => void): (msg: string) => void {
  return (msg) => {
    process.stderr.write(`[faults] ${msg}\n`);
    diagnostic(msg);
  };
}

export interface RowsFingerprint {
  count: number;
  checksum: string;
}

export function fingerprint(rows: readonly InteractionRow[]): RowsFingerprint {
  return { count: rows.length, checksum: sha256(canonicalBytes(rows)) };
}

export async function hotFingerprint(db: Db, ref: MessageRef): Promise<RowsFingerprint> {
  return fingerprint(await hotRows(db, ref));
}

/** Every verified archived row of the message's generation, read from its store, checked, in id order. */
export async function archivedRowsOf(
  db: Db,
  ref: MessageRef,
  generation: number,
  stores: ArchiveStores = mysqlOnly(),
): Promise<InteractionRow[]> {
  const key = { message_kind: ref.kind, message_id: ref.id, generation };
  const chunks = await db('archive_chunks')
    .where(key)
    .whereNotNull('verified_at')
    .orderBy('seq')
    .select<ChunkRecord[]>('seq', 'checksum', 'row_count', 'store', 'object_key');
  const rows: InteractionRow[] = [];
  for (const c of chunks) {
    const { columns, rowCount } = await stores.get(c.store).read(db, key, c);
    for (let r = 0; r < rowCount; r++) {
      const row = {} as InteractionRow;
      INTERACTION_COLUMNS.forEach((name, ci) => (row[name] = columns[ci][r]));
      rows.push(row);
    }
  }
  return rows.sort((a, b) => (BigInt(a.id as string) < BigInt(b.id as string) ? -1 : 1));
}

export async function archivedFingerprint(db: Db, ref: MessageRef, generation: number, stores?: ArchiveStores): Promise<RowsFingerprint> {
  return fingerprint(await archivedRowsOf(db, ref, generation, stores));
}

/** Rows committed as verified chunks of the generation (not decoded): cheap, for progress polling. */
export async function verifiedRowCount(db: Db, ref: MessageRef, generation: number): Promise<number> {
  const row = await db('archive_chunks')
    .where({ message_kind: ref.kind, message_id: ref.id, generation })
    .whereNotNull('verified_at')
    .sum<{ n: string | null }>('row_count as n')
    .first();
  return Number(row?.n ?? 0);
}

export { hotRowCount } from '../support/stack';

/** Errors of a read that met a table dropped under it (by the archive, after its last chunk). */
const TABLE_GONE = new Set([1146, 1412]);

/**
 * Where the message's rows are, read in one InnoDB snapshot (a worker still running may store a chunk
 * or drop a table between two separate reads). Until the archive drops the table it drained, every
 * row is still in it and the stored chunks hold at most as many; once dropped, every row is in a
 * chunk. Anything else, a row lost or doubled by the counts, throws.
 */
export async function rowsInPlace(db: Db, ref: MessageRef, generation: number, total: number): Promise<{ moved: number; hot: number }> {
  for (let attempt = 1; ; attempt++) {
    try {
      const counts = await db.transaction(async (trx) => ({
        moved: await verifiedRowCount(trx, ref, generation),
        hot: await hotRowCount(trx, ref),
      }));
      const { moved, hot } = counts;
      if (moved > total || !(hot === total || (hot === 0 && moved === total))) {
        throw new Error(
          `rows out of place: ${hot} hot and ${moved} in chunks of ${total} (every row hot until the drop, every row in a chunk after it)`,
        );
      }
      return counts;
    } catch (err) {
      const errno = (err as { errno?: number }).errno;
      if (attempt >= 5 || errno === undefined || !TABLE_GONE.has(errno)) throw err;
    }
  }
}

/**
 * Rows written so far by each transaction another connection has open on this database. Taken just
 * before a kill, it says where in a transaction the kill landed: the server rolls that transaction
 * back when the connection dies, so the committed rows afterwards cannot tell.
 */
export async function openTransactionWrites(db: Db): Promise<number[]> {
  const [rows] = (await db.raw(
    `SELECT t.trx_rows_modified AS modified
       FROM information_schema.INNODB_TRX t
       JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
      WHERE p.DB = DATABASE() AND t.trx_mysql_thread_id <> CONNECTION_ID()`,
  )) as [{ modified: number | string }[]];
  return rows.map((r) => Number(r.modified));
}

/** SIGKILL, and resolve once the process is gone. */
export function killHard(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
