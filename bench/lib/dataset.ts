/**
 * Benchmark data: throwaway databases with the real schema (the service's own migrations) and
 * deterministic interaction rows generated inside MariaDB with INSERT ... SELECT over the SEQUENCE
 * engine, so that millions of rows never pass through Node and every copy is byte-identical.
 *
 * The service keeps each message's hot rows in a table of its own (src/storage/hotTables.ts). The rows
 * are generated into one shared table first, as they always were (the interleaving of messages in id
 * order is the generator's), and then copied into each message's table by the service's own
 * ensureHotTable; the shared table, in the layout before migration 006, is also what pt-archiver and
 * the database-only benchmarks work on.
 *
 * Rows look like production rows rather than test fixtures, because compression and index sizes
 * depend on it: event ids are random UUIDs (incompressible, and a unique index that grows at random
 * places), users are 24-hex ids drawn from a large population, variants are per-message API ids,
 * timestamps advance with jitter, clicks carry an alias.
 */
import type { Db } from '../../src/db/knex';
import { createDb, ensureDatabase, migrateToLatest } from '../../src/db/knex';
import { MESSAGE_KINDS, type MessageKind, type MessageRef } from '../../src/shared/types';
import { INTERACTION_COLUMNS } from '../../src/storage/chunkCodec';
import { ensureHotTable, HOT_TABLE_TEMPLATE, hotTableName, messageHotTables, type HotTable } from '../../src/storage/hotTables';

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
 * Fills a table of the shared layout (`table`, e.g. made by createSharedTable) with targetRows +
 * otherRows rows. The target's rows are spread evenly across the id range (every k-th id), as a
 * message's interactions arrive among everybody else's. Secondary indexes are dropped for the load and
 * rebuilt afterwards by sorting, which takes minutes instead of the hours that row-by-row maintenance
 * of random index entries would take here; the result is the same schema with compact indexes (so the
 * hot size it is compared with is, if anything, small).
 */
export async function generateSharedInteractions(
  db: Db,
  table: string,
  spec: DatasetSpec,
  log: (msg: string) => void = () => undefined,
): Promise<GenerateTiming> {
  const total = spec.targetRows + spec.otherRows;
  const others = Math.max(1, spec.otherMessages ?? 500);
  // Row n is the target's when n * targetRows / span crosses an integer: an even spread over the
  // first `span` ids. The very last id belongs to another message, because pt-archiver never moves
  // the row holding a table's highest AUTO_INCREMENT value (its --safe-auto-increment default).
  const span = spec.otherRows > 0 ? total - 1 : total;
  const isTarget = `s.seq <= ${span} AND FLOOR(s.seq * ${spec.targetRows} / ${span}) > FLOOR((s.seq - 1) * ${spec.targetRows} / ${span})`;
  let insertSeconds = 0;
  const indexSeconds = await withIndexesRebuilt(db, table, async () => {
    const started = Date.now();
    const batch = 1_000_000;
    for (let from = 1; from <= total; from += batch) {
      const to = Math.min(total, from + batch - 1);
      // MariaDB's SEQUENCE engine: seq_<from>_to_<to> is a virtual table of those integers.
      await db.raw(`
        INSERT INTO \`${table}\` (${INTERACTION_COLUMNS.join(', ')})
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
 * Fills the service's layout: every message's rows, generated as generateSharedInteractions makes them
 * (same ids, same fingerprint), in the message's own hot table. The timing's insertSeconds is the
 * generation, indexSeconds the staging table's index and the copy into the messages' tables.
 */
export async function generateInteractions(
  db: Db,
  spec: DatasetSpec,
  log: (msg: string) => void = () => undefined,
): Promise<GenerateTiming> {
  let gen: GenerateTiming = { insertSeconds: 0, indexSeconds: 0 };
  let generated = 0;
  await loadIntoHotTables(
    db,
    async (staging) => {
      gen = await generateSharedInteractions(db, staging, spec, log);
      generated = Date.now();
    },
    log,
  );
  return { insertSeconds: gen.insertSeconds, indexSeconds: gen.indexSeconds + (Date.now() - generated) / 1000 };
}

/**
 * Rows written the simple way, into one table, then put where the service keeps them: `load` fills a
 * staging table of the template's columns (its name is the argument), whose rows are then copied into
 * their messages' own tables; the staging table is dropped. Returns how many messages.
 */
export async function loadIntoHotTables(
  db: Db,
  load: (staging: string) => Promise<void>,
  log: (msg: string) => void = () => undefined,
): Promise<number> {
  await createStagingTable(db, STAGING_TABLE);
  await load(STAGING_TABLE);
  const messages = await distributeIntoHotTables(db, STAGING_TABLE, log);
  await db.raw('DROP TABLE ??', [STAGING_TABLE]);
  return messages;
}

/** The shared table of the layout before migration 006, private to a benchmark. */
export const SHARED_TABLE = 'shared_interactions';

const STAGING_TABLE = 'bench_staging_interactions';

/** Secondary indexes of `interactions` before migration 006 (001, 002, 004 and 005): name → columns. */
const SHARED_INDEXES: Record<string, string> = {
  ix_interactions_message: 'message_kind,message_id,id',
  ix_interactions_reads: 'message_kind,message_id,event_type,user_id,occurred_at',
};

/**
 * A table as `interactions` was before migration 006, when it held every message's rows: the
 * template's columns and indexes, and ix_interactions_message, by which a message's rows were found.
 * Checked against the old definition, so that a later change to the template does not silently turn
 * the old layout into something that never existed.
 */
export async function createSharedTable(db: Db, name: string = SHARED_TABLE): Promise<void> {
  await db.raw('DROP TABLE IF EXISTS ??', [name]);
  await db.raw('CREATE TABLE ?? LIKE ??', [name, HOT_TABLE_TEMPLATE]);
  await db.raw('ALTER TABLE ?? ADD INDEX ix_interactions_message (message_kind, message_id, id)', [name]);
  const actual = [...(await secondaryIndexes(db, name))].map(([k, cols]) => `${k}(${cols})`).sort();
  const expected = Object.entries(SHARED_INDEXES)
    .map(([k, cols]) => `${k}(${cols})`)
    .sort();
  if (JSON.stringify(actual) !== JSON.stringify(expected)) {
    throw new Error(`${name} is not the shared table of before migration 006: ${actual.join(' ')} instead of ${expected.join(' ')}`);
  }
}

/** Secondary indexes of a table: name → its columns, comma-separated in index order. */
export async function secondaryIndexes(db: Db, table: string): Promise<Map<string, string>> {
  const [rows] = (await db.raw(
    `SELECT INDEX_NAME AS k, GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX) AS cols FROM information_schema.STATISTICS
      WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND INDEX_NAME <> 'PRIMARY' GROUP BY INDEX_NAME`,
    [table],
  )) as [{ k: string; cols: string }[]];
  return new Map(rows.map((r) => [r.k, r.cols]));
}

/** Where rows are generated before being copied into their messages' tables: only the index the copy finds them by. */
async function createStagingTable(db: Db, name: string): Promise<void> {
  await db.raw('DROP TABLE IF EXISTS ??', [name]);
  await db.raw('CREATE TABLE ?? LIKE ??', [name, HOT_TABLE_TEMPLATE]);
  for (const index of (await secondaryIndexes(db, name)).keys()) await db.raw('ALTER TABLE ?? DROP INDEX ??', [name, index]);
  await db.raw('ALTER TABLE ?? ADD INDEX ix_staging_message (message_kind, message_id, id)', [name]);
}

/** From this many rows on, a message's table gets its secondary indexes by a sort after the copy, as the generator's do. */
const SORTED_INDEX_ROWS = 50_000;

/** Tables made at once: each is a few DDL round trips, which overlap well. */
const TABLES_IN_FLIGHT = 4;

/** Parses a message kind read back from the database. */
export function messageKind(kind: string): MessageKind {
  const k = MESSAGE_KINDS.find((m) => m === kind);
  if (!k) throw new Error(`not a message kind: ${JSON.stringify(kind)}`);
  return k;
}

/**
 * Copies every message's rows of `source` (which must have an index leading with message_kind,
 * message_id) into the message's own hot table: what migration 006 does to existing data. Returns how
 * many messages.
 */
export async function distributeIntoHotTables(db: Db, source: string, log: (msg: string) => void = () => undefined): Promise<number> {
  const [groups] = (await db.raw('SELECT message_kind AS kind, message_id AS id, COUNT(*) AS n FROM ?? GROUP BY message_kind, message_id', [
    source,
  ])) as [{ kind: string; id: string; n: number | string }[]];
  let done = 0;
  await forEachLimited(groups, TABLES_IN_FLIGHT, async (g) => {
    await copyIntoHotTable(db, source, { kind: messageKind(g.kind), id: g.id }, Number(g.n));
    done += 1;
    if (done % 1000 === 0)
      log(`  ${done.toLocaleString('en-US')} / ${groups.length.toLocaleString('en-US')} messages in their hot tables or segments`);
  });
  log(`  ${groups.length.toLocaleString('en-US')} messages in their hot tables or segments`);
  return groups.length;
}

/**
 * Copies the message's `rows` rows of `source` into its current hot table, made by the service's
 * ensureHotTable if it has none, with their ids, in id order.
 */
export async function copyIntoHotTable(db: Db, source: string, ref: MessageRef, rows: number): Promise<HotTable> {
  const t = await ensureHotTable(db, ref, { rows });
  const copy = async () => {
    await db.raw('INSERT INTO ?? SELECT * FROM ?? WHERE message_kind = ? AND message_id = ? ORDER BY id', [
      t.name,
      source,
      ref.kind,
      ref.id,
    ]);
  };
  if (t.shared) {
    // A segment of a shared table, whose statistics other messages' rows keep current.
    await copy();
  } else if (rows >= SORTED_INDEX_ROWS) {
    await withIndexesRebuilt(db, t.name, copy);
  } else {
    await copy();
    // Else the statistics of the table as it was made, empty, would plan the first reads: InnoDB
    // refreshes them only later, in the background.
    await db.raw('ANALYZE TABLE ??', [t.name]);
  }
  return t;
}

/** Runs fn over items with at most `limit` in flight; on a failure, lets the others finish, then throws it. */
export async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const failures: unknown[] = [];
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length && failures.length === 0) {
        try {
          await fn(items[next++]);
        } catch (err) {
          if (failures.length === 0) failures.push(err);
        }
      }
    }),
  );
  if (failures.length > 0) throw failures[0];
}

/**
 * Names of the hot tables in use (current or draining), of every message or of those whose id is LIKE
 * `idLike`: a shared table once, however many of the messages have a segment in it (a benchmark's
 * shared tables hold its own messages only).
 */
export async function hotTablesOf(db: Db, idLike?: string): Promise<string[]> {
  let q = db('hot_tables').whereIn('role', ['current', 'draining']);
  if (idLike !== undefined) q = q.where('message_id', 'like', idLike);
  const rows = await q.distinct<{ no: string }[]>(db.raw('COALESCE(shared_in, table_no) AS no')).orderBy('no');
  return rows.map((r) => hotTableName(r.no));
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

/** Tables per statement when a figure is summed over many tables: one statement naming thousands of them would be large to parse and plan. */
const TABLES_PER_STATEMENT = 50;

interface FingerprintParts {
  n: bigint;
  s: bigint;
  x: bigint;
  m: bigint;
}

/**
 * Sums, per statement, the rows of up to TABLES_PER_STATEMENT tables (of the message `ref` only, when
 * given): count, and sum and xor of a CRC32 per row over every column with NULL kept distinct from any
 * string, and the highest id.
 */
async function fingerprintParts(db: Db, tables: readonly string[], ref: MessageRef | null): Promise<FingerprintParts> {
  const cols = INTERACTION_COLUMNS.map((c) => `COALESCE(CAST(\`${c}\` AS CHAR), '\\\\N')`).join(", '|', ");
  const total: FingerprintParts = { n: 0n, s: 0n, x: 0n, m: 0n };
  for (let i = 0; i < tables.length; i += TABLES_PER_STATEMENT) {
    const batch = tables.slice(i, i + TABLES_PER_STATEMENT);
    const where = ref ? ' WHERE message_kind = ? AND message_id = ?' : '';
    // Each table aggregated on its own, so that no union of its rows is materialized.
    const branches = batch
      .map(
        () => `SELECT COUNT(*) AS n, SUM(CRC32(CONCAT(${cols}))) AS s, BIT_XOR(CRC32(CONCAT(${cols}))) AS x, MAX(id) AS m FROM ??${where}`,
      )
      .join(' UNION ALL ');
    const bindings = batch.flatMap((t) => (ref ? [t, ref.kind, ref.id] : [t]));
    const [rows] = (await db.raw(`SELECT SUM(n) AS n, SUM(s) AS s, BIT_XOR(x) AS x, MAX(m) AS m FROM (${branches}) u`, bindings)) as [
      { n: string | number | null; s: string | number | null; x: string | number | null; m: string | number | null }[],
    ];
    const r = rows[0];
    total.n += BigInt(r.n ?? 0);
    total.s += BigInt(r.s ?? 0);
    total.x ^= BigInt(r.x ?? 0);
    const m = BigInt(r.m ?? 0);
    if (m > total.m) total.m = m;
  }
  return total;
}

const formatFingerprint = (p: FingerprintParts) => `${p.n}/${p.s}/${p.x}/${p.m}`;

/** Order-independent fingerprint of a message's rows in one table, computed in SQL (no rows through Node). */
export async function sqlFingerprint(db: Db, table: string, ref: MessageRef): Promise<string> {
  return formatFingerprint(await fingerprintParts(db, [table], ref));
}

/** The same fingerprint over whole tables, e.g. every hot table of a set of messages, each holding one message's rows only. */
export async function tablesFingerprint(db: Db, tables: readonly string[]): Promise<string> {
  return formatFingerprint(await fingerprintParts(db, tables, null));
}

/** The fingerprint of a message's hot rows, wherever the service keeps them (its current table, and a draining one). */
export async function hotFingerprint(db: Db, ref: MessageRef): Promise<string> {
  const tables = (await messageHotTables(db, ref)).map((t) => t.name);
  return formatFingerprint(await fingerprintParts(db, tables, ref));
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

export async function countRows(db: Db, table: string, ref: MessageRef): Promise<number> {
  const [rows] = (await db.raw('SELECT COUNT(*) AS n FROM ?? WHERE message_kind = ? AND message_id = ?', [table, ref.kind, ref.id])) as [
    { n: string | number }[],
  ];
  return Number(rows[0].n);
}

/** Rows in these tables, all of them. */
export async function countTableRows(db: Db, tables: readonly string[]): Promise<number> {
  let n = 0;
  for (let i = 0; i < tables.length; i += TABLES_PER_STATEMENT) {
    const batch = tables.slice(i, i + TABLES_PER_STATEMENT);
    const [rows] = (await db.raw(
      `SELECT SUM(n) AS n FROM (${batch.map(() => 'SELECT COUNT(*) AS n FROM ??').join(' UNION ALL ')}) u`,
      batch,
    )) as [{ n: string | number | null }[]];
    n += Number(rows[0].n ?? 0);
  }
  return n;
}

/** Hot rows of the messages whose id is LIKE `idLike`, in every table that holds some (shared tables hold others' too). */
export async function hotRowsLike(db: Db, idLike: string): Promise<number> {
  let n = 0;
  for (const t of await hotTablesOf(db, idLike)) {
    const [rows] = (await db.raw('SELECT COUNT(*) AS n FROM ?? WHERE message_id LIKE ?', [t, idLike])) as [{ n: string | number }[]];
    n += Number(rows[0].n);
  }
  return n;
}

/** A message's hot rows, in whichever of its tables they are. */
export async function countHotRows(db: Db, ref: MessageRef): Promise<number> {
  let n = 0;
  for (const t of await messageHotTables(db, ref)) n += await countRows(db, t.name, ref);
  return n;
}
