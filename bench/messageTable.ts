/**
 * What a table per message (src/storage/hotTables.ts, migration 006) costs ingestion's own statement;
 * what it gains the archive is bench:archive's to measure, against pt-archiver in both layouts.
 *
 * One MariaDB, one data set: BENCH_OTHER_ROWS rows (default 5,000,000) of 500 messages, generated as
 * bench:archive generates them, held twice: in a shared table as `interactions` was before migration
 * 006, and in each message's own table, made by the service's ensureHotTable. Then BENCH_INGEST_ROWS
 * more rows (default 200,000) of 25 of those messages, interleaved as concurrent sends arrive, are
 * inserted in batches of 1,000, one transaction per batch:
 *   1. into the shared table, one INSERT per batch, as ingestion did before migration 006;
 *   2. into the messages' own tables, as ingestion does now: the batch's tables looked up and locked in
 *      share mode (lockCurrentTables), then one INSERT per message in the batch.
 * Only that statement: the rest of an ingestion batch (ledger, summaries) is the same in either layout,
 * and bench:ingest measures the whole of it through the API. Also timed: ensureHotTable for messages
 * that have no table yet, which ingestion runs outside the batch's transaction the first time a message
 * is seen.
 *
 *   npm run bench:message-table
 *   BENCH_OTHER_ROWS=500000 BENCH_INGEST_ROWS=50000 npm run bench:message-table
 */
import type { Knex } from 'knex';
import type { Db } from '../src/db/knex';
import type { MessageRef } from '../src/shared/types';
import { INTERACTION_COLUMNS } from '../src/storage/chunkCodec';
import { ensureHotTable, lockCurrentTables } from '../src/storage/hotTables';
import {
  countRows,
  countTableRows,
  createBenchDatabase,
  createSharedTable,
  distributeIntoHotTables,
  generateSharedInteractions,
  hotTablesOf,
  messageKind,
  SHARED_TABLE,
} from './lib/dataset';
import { timedPhase, type PhaseFigure } from './lib/moves';
import { fmtInt, uptimeLine } from './lib/proc';
import { envInt, exitWhenSettled, log, saveResults, table } from './lib/report';
import { startBenchServer } from './lib/server';

const INGEST_MESSAGES = 25;
const INGEST_BATCH = 1_000;
const NEW_TABLES = 25;

interface Timed extends PhaseFigure {
  clientCpuSeconds: number;
}

/** A phase of work done in this process: timedPhase's figures and this process's CPU seconds. */
async function timedHere(db: Db, pid: number | null, work: () => Promise<void>): Promise<Timed> {
  const cpu0 = process.cpuUsage();
  const phase = await timedPhase(db, pid, work);
  const used = process.cpuUsage(cpu0);
  return { ...phase, clientCpuSeconds: (used.user + used.system) / 1e6 };
}

const cpuCell = (t: Timed) => `${t.dbCpuSeconds?.toFixed(1) ?? '?'} + ${t.clientCpuSeconds.toFixed(1)}`;

type Row = Record<string, unknown>;

const ingestRef = (m: number): MessageRef => ({ kind: m % 2 === 0 ? 'campaign' : 'canvas', id: `bench-other-${m}` });

/**
 * Rows of INGEST_MESSAGES of the data set's messages, without ids (the tables hand them out),
 * round-robin across the messages, in batches.
 */
async function ingestBatches(db: Db, rows: number): Promise<Row[][]> {
  const perMessage = Math.ceil(rows / INGEST_MESSAGES);
  const columns = INTERACTION_COLUMNS.filter((c) => c !== 'id');
  const lists: Row[][] = [];
  for (let m = 0; m < INGEST_MESSAGES; m++) {
    const ref = ingestRef(m);
    lists.push(
      await db(SHARED_TABLE).where({ message_kind: ref.kind, message_id: ref.id }).orderBy('id').limit(perMessage).select<Row[]>(columns),
    );
  }
  const interleaved: Row[] = [];
  for (let i = 0; i < perMessage; i++) for (const list of lists) if (list[i]) interleaved.push(list[i]);
  const batches: Row[][] = [];
  for (let i = 0; i < Math.min(rows, interleaved.length); i += INGEST_BATCH)
    batches.push(interleaved.slice(i, Math.min(rows, i + INGEST_BATCH)));
  return batches;
}

/** lockCurrentTables' way of running a statement, on a knex transaction. */
const queryOn =
  (trx: Knex.Transaction) =>
  async <T>(sql: string, values: readonly string[]): Promise<T> => {
    // knex types a raw result by its own rules; mysql2 answers [rows, fields].
    const [rows] = (await trx.raw(sql, [...values])) as unknown as [T];
    return rows;
  };

/** The batch's rows per message, in the order the messages first appear in it. */
function byMessage(batch: readonly Row[]): { ref: MessageRef; rows: Row[] }[] {
  const groups = new Map<string, { ref: MessageRef; rows: Row[] }>();
  for (const r of batch) {
    const key = `${String(r.message_kind)}\u0000${String(r.message_id)}`;
    const group = groups.get(key);
    if (group) group.rows.push(r);
    else groups.set(key, { ref: { kind: messageKind(String(r.message_kind)), id: String(r.message_id) }, rows: [r] });
  }
  return [...groups.values()];
}

function timedIngest(db: Db, pid: number | null, batches: readonly Row[][], own: boolean): Promise<Timed> {
  return timedHere(db, pid, async () => {
    for (const batch of batches) {
      await db.transaction(async (trx) => {
        if (!own) {
          await trx(SHARED_TABLE).insert(batch);
          return;
        }
        const groups = byMessage(batch);
        const tables = await lockCurrentTables(
          queryOn(trx),
          groups.map((g) => g.ref),
        );
        for (const g of groups) {
          const t = tables.get(g.ref);
          if (!t) throw new Error(`${g.ref.kind}:${g.ref.id} has no hot table`);
          await trx(t.name).insert(g.rows);
        }
      });
    }
  });
}

async function main(): Promise<void> {
  const otherRows = envInt('BENCH_OTHER_ROWS', 5_000_000);
  const ingestTarget = envInt('BENCH_INGEST_ROWS', 200_000);
  const server = await startBenchServer(log);
  const bench = await createBenchDatabase(server.url, 'bench_message_table');
  const db = bench.db;
  try {
    log(`generating ${fmtInt(otherRows)} rows of 500 messages in the shared table of before migration 006`);
    await createSharedTable(db);
    await generateSharedInteractions(db, SHARED_TABLE, { targetRows: 0, otherRows }, log);
    log('copying every message into its own table');
    await distributeIntoHotTables(db, SHARED_TABLE, log);
    const uptimeBefore = uptimeLine();

    const created = Date.now();
    for (let m = 0; m < NEW_TABLES; m++) await ensureHotTable(db, { kind: 'campaign', id: `bench-new-${m}` });
    const createMs = (Date.now() - created) / NEW_TABLES;

    log(`ingestion's insert: ${fmtInt(ingestTarget)} rows of ${INGEST_MESSAGES} messages in batches of ${INGEST_BATCH}`);
    const batches = await ingestBatches(db, ingestTarget);
    const ingested = batches.reduce((n, b) => n + b.length, 0);
    const refs = Array.from({ length: INGEST_MESSAGES }, (_, m) => ingestRef(m));
    const sharedBefore = (await Promise.all(refs.map((r) => countRows(db, SHARED_TABLE, r)))).reduce((a, b) => a + b, 0);
    const ownTables = await hotTablesOf(db, 'bench-other-%');
    const ownBefore = await countTableRows(db, ownTables);
    const ingestShared = await timedIngest(db, server.pid, batches, false);
    const ingestOwn = await timedIngest(db, server.pid, batches, true);
    log(`  shared ${ingestShared.seconds.toFixed(1)} s, own tables ${ingestOwn.seconds.toFixed(1)} s`);
    const uptimeAfter = uptimeLine();

    const sharedAfter = (await Promise.all(refs.map((r) => countRows(db, SHARED_TABLE, r)))).reduce((a, b) => a + b, 0);
    const ownAfter = await countTableRows(db, ownTables);
    if (sharedAfter - sharedBefore !== ingested || ownAfter - ownBefore !== ingested) {
      throw new Error(
        `inserted ${sharedAfter - sharedBefore} rows into the shared table and ${ownAfter - ownBefore} into the own tables, expected ${ingested}`,
      );
    }

    const markdown = [
      `${fmtInt(otherRows)} rows of 500 messages already stored in either layout, ${server.description}.`,
      '',
      table(
        [
          `ingestion's INSERT, ${fmtInt(ingested)} rows of ${INGEST_MESSAGES} messages, batches of ${INGEST_BATCH}`,
          'seconds',
          'rows/s',
          'CPU s (MariaDB incl. purge + client)',
        ],
        [
          ['one INSERT per batch into the shared table (before migration 006)', ingestShared] as const,
          [
            "the batch's tables locked in share mode, then one INSERT per message and batch into its own table (migration 006)",
            ingestOwn,
          ] as const,
        ].map(([name, t]) => [name, t.seconds.toFixed(1), fmtInt(ingested / t.seconds), cpuCell(t)]),
      ),
      '',
      `ensureHotTable for a message without a table (registry row, \`CREATE TABLE\`, made current): ${createMs.toFixed(0)} ms each, ${NEW_TABLES} made.`,
      '',
      `Load: before \`${uptimeBefore}\`; after \`${uptimeAfter}\`.`,
    ].join('\n');
    process.stdout.write(`\n${markdown}\n`);
    saveResults('message-table', {
      otherRows,
      server: server.description,
      ingest: { rows: ingested, createMs, shared: ingestShared, own: ingestOwn },
      markdown,
    });
  } finally {
    await bench.drop();
    await server.stop();
  }
}

exitWhenSettled(main(), 'bench:message-table');
