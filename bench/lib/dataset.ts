/**
 * Benchmark data: throwaway databases with the real schema (the service's own migrations) and
 * deterministic interaction rows generated inside MariaDB with INSERT ... SELECT over the SEQUENCE
 * engine, so that millions of rows never pass through Node and every copy is byte-identical.
 *
 * Rows look like production rows rather than test fixtures, because compression and index sizes
 * depend on it: event ids are random UUIDs (incompressible, and a unique index that grows at random
 * places), users are 24-hex ids drawn from a large population, variants are per-message API ids,
 * timestamps advance with jitter, clicks carry an alias.
 */
import type { Db } from '../../src/db/knex';
import { createDb, ensureDatabase, migrateToLatest } from '../../src/db/knex';
import { INTERACTION_COLUMNS } from '../../src/storage/chunkCodec';

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

export interface BenchDatabase {
  name: string;
  url: string;
  db: Db;
  drop(): Promise<void>;
}

/** A fresh database with the service's migrations applied, on the server `serverUrl` points at. */
export async function createBenchDatabase(serverUrl: string, name: string): Promise<BenchDatabase> {
  const url = withDatabase(serverUrl, name);
  const admin = createDb(url, { min: 0, max: 1 });
  await ensureDatabase(url);
  await admin.raw('DROP DATABASE IF EXISTS ??', [name]);
  await admin.destroy();
  await ensureDatabase(url);
  const db = createDb(url, { min: 0, max: 4 });
  await migrateToLatest(db);
  return {
    name,
    url,
    db,
    async drop() {
      await db.raw('DROP DATABASE IF EXISTS ??', [name]).catch(() => undefined);
      await db.destroy();
    },
  };
}

export interface DatasetSpec {
  /** Rows of the message that is archived and restored. */
  targetRows: number;
  /** Rows of other messages, interleaved with the target's in id order as concurrent sends would be. */
  otherRows: number;
  /** How many other messages share otherRows. */
  otherMessages?: number;
}

export const TARGET = { kind: 'campaign', id: 'bench-target' } as const;

/** Seconds spent, per phase, building a dataset. */
export interface GenerateTiming {
  insertSeconds: number;
  indexSeconds: number;
}

/**
 * Fills `interactions` with targetRows + otherRows rows. The target's rows are spread evenly across
 * the id range (every k-th id), as a message's interactions arrive among everybody else's. Secondary
 * indexes are dropped for the load and rebuilt afterwards by sorting, which takes minutes instead of
 * the hours that row-by-row maintenance of a random unique index would take here; the result is the
 * same schema with compact indexes (so the hot size it is compared with is, if anything, small).
 */
export async function generateInteractions(db: Db, spec: DatasetSpec, log: (msg: string) => void = () => undefined): Promise<GenerateTiming> {
  const total = spec.targetRows + spec.otherRows;
  const others = Math.max(1, spec.otherMessages ?? 500);
  // Row n is the target's when n * targetRows / span crosses an integer: an even spread over the
  // first `span` ids. The very last id belongs to another message, because pt-archiver never moves
  // the row holding a table's highest AUTO_INCREMENT value (its --safe-auto-increment default).
  const span = spec.otherRows > 0 ? total - 1 : total;
  const isTarget = `s.seq <= ${span} AND FLOOR(s.seq * ${spec.targetRows} / ${span}) > FLOOR((s.seq - 1) * ${spec.targetRows} / ${span})`;
  let insertSeconds = 0;
  const indexSeconds = await withIndexesRebuilt(db, 'interactions', async () => {
    const started = Date.now();
    const batch = 1_000_000;
    for (let from = 1; from <= total; from += batch) {
      const to = Math.min(total, from + batch - 1);
      // MariaDB's SEQUENCE engine: seq_<from>_to_<to> is a virtual table of those integers.
      await db.raw(`
        INSERT INTO interactions (${INTERACTION_COLUMNS.join(', ')})
        SELECT h.seq,
               CONCAT(SUBSTR(h.e, 1, 8), '-', SUBSTR(h.e, 9, 4), '-4', SUBSTR(h.e, 14, 3), '-',
                      SUBSTR('89ab', 1 + ASCII(SUBSTR(h.e, 17, 1)) % 4, 1), SUBSTR(h.e, 18, 3), '-', SUBSTR(h.e, 21, 12)),
               h.kind, h.mid,
               SUBSTR(MD5(CONCAT('user-', (h.seq * 2654435761) % 400000)), 1, 24),
               CASE WHEN h.r < 50 THEN 'received' WHEN h.r < 75 THEN 'opened' WHEN h.r < 87 THEN 'clicked'
                    WHEN h.r < 92 THEN 'converted' ELSE 'control_group' END,
               IF(h.kind = 'campaign', MD5(CONCAT(h.mid, '/variant/', h.seq % 3)), NULL),
               IF(h.kind = 'canvas', MD5(CONCAT(h.mid, '/step/', h.seq % 5)), NULL),
               IF(h.kind = 'canvas', MD5(CONCAT(h.mid, '/variation/', h.seq % 2)), NULL),
               IF(h.r BETWEEN 75 AND 86, CONCAT('cta-', h.r % 4), NULL),
               ELT(1 + (h.seq * 7) % 10, 'email', 'email', 'email', 'email', 'email', 'email', 'push', 'push', 'push', 'sms'),
               TIMESTAMPADD(MICROSECOND, (h.seq * 50 + h.r * 7) * 1000, TIMESTAMP'2025-06-01 00:00:00')
          FROM (
            SELECT s.seq,
                   MD5(CONCAT('event-', s.seq)) AS e,
                   (s.seq * 40503) % 100 AS r,
                   IF(${isTarget}, '${TARGET.kind}', IF(s.seq % 2 = 0, 'campaign', 'canvas')) AS kind,
                   IF(${isTarget}, '${TARGET.id}', CONCAT('bench-other-', s.seq % ${others})) AS mid
              FROM seq_${from}_to_${to} s
          ) h
      `);
      log(`  generated ${to.toLocaleString('en-US')} / ${total.toLocaleString('en-US')} rows`);
    }
    insertSeconds = (Date.now() - started) / 1000;
  });
  return { insertSeconds, indexSeconds };
}

/**
 * Runs `load` with the table's secondary indexes dropped, then rebuilds them in one ALTER (a sort, not
 * millions of random index insertions) and refreshes the statistics. Returns the rebuild's seconds.
 */
export async function withIndexesRebuilt(db: Db, table: string, load: () => Promise<void>): Promise<number> {
  const [indexes] = (await db.raw(
    `SELECT DISTINCT INDEX_NAME AS name FROM information_schema.STATISTICS
      WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND INDEX_NAME <> 'PRIMARY'`,
    [table],
  )) as [{ name: string }[]];
  const secondary = indexes.map((r) => r.name);
  const definitions = await indexDefinitions(db, table, secondary);
  for (const name of secondary) await db.raw('ALTER TABLE ?? DROP INDEX ??', [table, name]);
  await load();
  const started = Date.now();
  if (definitions.length) await db.raw(`ALTER TABLE ?? ${definitions.join(', ')}`, [table]);
  await db.raw('ANALYZE TABLE ??', [table]);
  return (Date.now() - started) / 1000;
}

/** `ADD [UNIQUE] INDEX name (cols)` clauses that recreate the given secondary indexes as they were. */
async function indexDefinitions(db: Db, table: string, names: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const name of names) {
    const [rows] = (await db.raw(
      `SELECT COLUMN_NAME AS col, SUB_PART AS part, NON_UNIQUE AS nonUnique FROM information_schema.STATISTICS
        WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND INDEX_NAME = ? ORDER BY SEQ_IN_INDEX`,
      [table, name],
    )) as [{ col: string; part: number | null; nonUnique: number | string }[]];
    const cols = rows.map((r) => `\`${r.col}\`${r.part ? `(${r.part})` : ''}`).join(', ');
    out.push(`ADD ${Number(rows[0].nonUnique) === 0 ? 'UNIQUE ' : ''}INDEX \`${name}\` (${cols})`);
  }
  return out;
}

/**
 * Order-independent fingerprint of a message's rows computed in SQL (no rows through Node): count, and
 * sum and xor of a CRC32 per row over every column with NULL kept distinct from any string.
 */
export async function sqlFingerprint(db: Db, table: string, ref: { kind: string; id: string }): Promise<string> {
  const cols = INTERACTION_COLUMNS.map((c) => `COALESCE(CAST(\`${c}\` AS CHAR), '\\\\N')`).join(", '|', ");
  const [rows] = (await db.raw(
    `SELECT COUNT(*) AS n, SUM(CRC32(CONCAT(${cols}))) AS s, BIT_XOR(CRC32(CONCAT(${cols}))) AS x, MAX(id) AS m
       FROM ?? WHERE message_kind = ? AND message_id = ?`,
    [table, ref.kind, ref.id],
  )) as [{ n: string | number; s: string | null; x: string | number; m: string | null }[]];
  const r = rows[0];
  return `${r.n}/${r.s ?? 0}/${r.x}/${r.m ?? 0}`;
}

/** data_length + index_length of a table, after ANALYZE so that the figures are current. */
export async function tableBytes(db: Db, table: string): Promise<{ data: number; index: number; rows: number }> {
  await db.raw('ANALYZE TABLE ??', [table]);
  const [rows] = (await db.raw(
    `SELECT DATA_LENGTH AS d, INDEX_LENGTH AS i, TABLE_ROWS AS r FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?`,
    [table],
  )) as [{ d: string | number; i: string | number; r: string | number }[]];
  return { data: Number(rows[0].d), index: Number(rows[0].i), rows: Number(rows[0].r) };
}

export async function countRows(db: Db, table: string, ref: { kind: string; id: string }): Promise<number> {
  const [rows] = (await db.raw('SELECT COUNT(*) AS n FROM ?? WHERE message_kind = ? AND message_id = ?', [table, ref.kind, ref.id])) as [
    { n: string | number }[],
  ];
  return Number(rows[0].n);
}
