/**
 * A design experiment beside target 1, not the service's code: what the archive would cost if each
 * message's hot rows lived in a table of their own, so that archiving drops the table instead of
 * deleting its rows one by one.
 *
 * Every read of `interactions` names one message first (ix_interactions_reads leads with it; since
 * migration 005 profiles find a user's messages in `user_messages`), so such a layout is possible. What
 * it would cost ingestion's own statement is measured below; what it would cost the reads and operators
 * is not (docs/BENCHMARKS.md).
 *
 * One MariaDB, one data set (the bench:archive generator): the message's rows are copied, in id order,
 * into two tables of their own with the real table's columns and indexes. Timed, as printed:
 *   1. pt-archiver from the shared `interactions` table (the issue's baseline, as in bench:archive);
 *   2. pt-archiver from the message's own table (it deletes row by row wherever the rows are);
 *   3. the prototype: the rows read in id order, encoded by the service's own codec, stored as chunks
 *      marked verified, each read back and checked, one chunk stored while the next is read; then
 *      `DROP TABLE`.
 * The chunks are then decoded into a third table whose fingerprint must equal the rows' before.
 *
 * What the layout costs ingestion's own statement: BENCH_INGEST_ROWS rows (default 200,000) of 25 other
 * messages, interleaved as concurrent sends arrive, inserted in batches of 1,000, one transaction per
 * batch: into the shared table (one INSERT per batch, as ingestion does now), then into 25 tables of
 * their own (one INSERT per message in the batch). Only that statement: the rest of an ingestion
 * batch (ledger, summaries) is the same in either layout.
 *
 *   npm run bench:message-table                   1,000,000 rows among 5,000,000
 *   BENCH_TARGET_ROWS=100000 BENCH_OTHER_ROWS=500000 npm run bench:message-table
 */
import type { Db } from '../src/db/knex';
import { storeVerifiedChunk } from '../src/storage/archiver';
import { decodeChunk, encodeRowArrays, INTERACTION_COLUMNS, type RowArray } from '../src/storage/chunkCodec';
import { createBenchDatabase, type BenchDatabase, generateInteractions, sqlFingerprint, tableBytes, TARGET, countRows } from './lib/dataset';
import { timedPhase, type PhaseFigure } from './lib/moves';
import { fmtInt, fmtMB, uptimeLine } from './lib/proc';
import { createPlainArchiveTable, ptArchiverVersion, runPtArchiver, type PtArchiverRun, type PtArchiverSource } from './lib/ptArchiver';
import { envInt, exitWhenSettled, log, saveResults, table } from './lib/report';
import { startBenchServer } from './lib/server';

const CHUNK_ROWS = 5_000;
const KEY = { message_kind: TARGET.kind, message_id: TARGET.id, generation: 1 };

interface Timed extends PhaseFigure {
  clientCpuSeconds: number;
}

/** Copies the message's rows, in id order, into a table of their own with the real table's indexes. */
async function copyIntoOwnTable(db: Db, name: string): Promise<void> {
  await db.raw('CREATE TABLE ?? LIKE interactions', [name]);
  await db.raw('INSERT INTO ?? SELECT * FROM interactions WHERE message_kind = ? AND message_id = ? ORDER BY id', [name, TARGET.kind, TARGET.id]);
  await db.raw('ANALYZE TABLE ??', [name]);
}

/** A phase of work done in this process: timedPhase's figures and this process's CPU seconds. */
async function timedHere(db: Db, pid: number | null, work: () => Promise<void>): Promise<Timed> {
  const cpu0 = process.cpuUsage();
  const phase = await timedPhase(db, pid, work);
  const used = process.cpuUsage(cpu0);
  return { ...phase, clientCpuSeconds: (used.user + used.system) / 1e6 };
}

const cpuCell = (t: Timed) => `${t.dbCpuSeconds?.toFixed(1) ?? '?'} + ${t.clientCpuSeconds.toFixed(1)}`;

async function timedPt(bench: BenchDatabase, pid: number | null, source: PtArchiverSource, dest: string): Promise<Timed & { statistics: string; command: string }> {
  await createPlainArchiveTable(bench, dest);
  // timedPhase times the run and the purge after it; pt-archiver's own figures come from its process.
  const runs: PtArchiverRun[] = [];
  const phase = await timedPhase(bench.db, pid, async () => {
    runs.push(await runPtArchiver(bench, TARGET, dest, source));
  });
  const [done] = runs;
  return { ...phase, seconds: done.seconds, clientCpuSeconds: done.cpuSeconds, statistics: done.statistics, command: done.command };
}

/** One chunk encoded by the service's codec and stored as the archive stores it, checked once stored. */
async function storeChunk(db: Db, seq: number, rows: RowArray[]): Promise<number> {
  await storeVerifiedChunk(db, KEY, seq, await encodeRowArrays(rows));
  return rows.length;
}

/** The prototype's archive: the table read in id order and stored chunk by chunk, then dropped. */
async function archiveOwnTable(db: Db, name: string): Promise<number> {
  const read = (after: string) =>
    db.from(name).select(INTERACTION_COLUMNS).where('id', '>', after).orderBy('id').limit(CHUNK_ROWS).options({ rowsAsArray: true }) as Promise<RowArray[]>;
  let moved = 0;
  let seq = 0;
  let next = read('0');
  const storing: Promise<number>[] = [];
  for (;;) {
    const rows = await next;
    if (rows.length === 0) break;
    // The next chunk is read while this one is encoded, stored and checked.
    next = read(String(rows[rows.length - 1][0]));
    next.catch(() => undefined);
    seq += 1;
    storing.push(storeChunk(db, seq, rows));
    if (storing.length >= 2) moved += await storing.shift()!;
  }
  for (const s of storing) moved += await s;
  await db.raw('DROP TABLE ??', [name]);
  return moved;
}

/** Decodes every stored chunk into a new table of the message's own (the check, not timed as a target). */
async function restoreInto(db: Db, name: string): Promise<void> {
  await db.raw('CREATE TABLE ?? LIKE interactions', [name]);
  const chunks = (await db('archive_chunks').where(KEY).orderBy('seq').select('seq', 'checksum', 'row_count')) as { seq: number; checksum: string; row_count: number }[];
  for (const c of chunks) {
    const { payload } = await db('archive_chunks').where({ ...KEY, seq: c.seq }).first<{ payload: Buffer }>('payload');
    const rows = await decodeChunk(payload, { checksum: c.checksum, rowCount: Number(c.row_count) });
    for (let i = 0; i < rows.length; i += 1_000) await db(name).insert(rows.slice(i, i + 1_000));
  }
}

const INGEST_MESSAGES = 25;
const INGEST_BATCH = 1_000;
const ownTableOf = (messageId: string) => `own_${messageId.replace(/[^a-z0-9]/gi, '_')}`;

/** Rows of INGEST_MESSAGES other messages, round-robin, without ids (the tables hand them out). */
async function ingestRows(db: Db, rows: number): Promise<Record<string, unknown>[][]> {
  const perMessage = Math.ceil(rows / INGEST_MESSAGES);
  const columns = INTERACTION_COLUMNS.filter((c) => c !== 'id');
  const lists: Record<string, unknown>[][] = [];
  for (let m = 0; m < INGEST_MESSAGES; m++) {
    lists.push((await db('interactions').where({ message_id: `bench-other-${m}` }).orderBy('id').limit(perMessage).select(columns)) as Record<string, unknown>[]);
  }
  const interleaved: Record<string, unknown>[] = [];
  for (let i = 0; i < perMessage; i++) for (const list of lists) if (list[i]) interleaved.push(list[i]);
  const batches: Record<string, unknown>[][] = [];
  for (let i = 0; i < Math.min(rows, interleaved.length); i += INGEST_BATCH) batches.push(interleaved.slice(i, Math.min(rows, i + INGEST_BATCH)));
  return batches;
}

function timedIngest(db: Db, pid: number | null, batches: Record<string, unknown>[][], own: boolean): Promise<Timed> {
  return timedHere(db, pid, async () => {
    for (const batch of batches) {
      await db.transaction(async (trx) => {
        if (!own) {
          await trx('interactions').insert(batch);
          return;
        }
        const byMessage = new Map<string, Record<string, unknown>[]>();
        for (const r of batch) {
          const rows = byMessage.get(String(r.message_id));
          if (rows) rows.push(r);
          else byMessage.set(String(r.message_id), [r]);
        }
        for (const [messageId, rows] of byMessage) await trx(ownTableOf(messageId)).insert(rows);
      });
    }
  });
}

async function main(): Promise<void> {
  const targetRows = envInt('BENCH_TARGET_ROWS', 1_000_000);
  const otherRows = envInt('BENCH_OTHER_ROWS', 5_000_000);
  log(`pt-archiver: ${ptArchiverVersion()}`);
  const server = await startBenchServer(log);
  const bench = await createBenchDatabase(server.url, 'bench_message_table');
  const db = bench.db;
  try {
    log(`generating ${fmtInt(targetRows)} rows of ${TARGET.kind}:${TARGET.id} among ${fmtInt(otherRows)} others`);
    await generateInteractions(db, { targetRows, otherRows }, log);
    const fingerprint = await sqlFingerprint(db, 'interactions', TARGET);
    log('copying the message into two tables of its own');
    await copyIntoOwnTable(db, 'msg_for_pt');
    await copyIntoOwnTable(db, 'msg_for_service');
    const ownBytes = await tableBytes(db, 'msg_for_service');
    const uptimeBefore = uptimeLine();

    log('pt-archiver from the shared table');
    const ptShared = await timedPt(bench, server.pid, {}, 'archive_from_shared');
    log(`  ${ptShared.seconds.toFixed(1)} s`);
    log("pt-archiver from the message's own table");
    // Every row of the own table is the message's, the highest id too: pt-archiver keeps that row back
    // unless told not to (its --safe-auto-increment default, there for tables that hand out ids).
    const ptOwn = await timedPt(bench, server.pid, { table: 'msg_for_pt', extraFlags: ['--no-safe-auto-increment'] }, 'archive_from_own');
    log(`  ${ptOwn.seconds.toFixed(1)} s`);

    log("prototype: the message's own table stored as chunks, then dropped");
    let moved = 0;
    const prototype = await timedHere(db, server.pid, async () => {
      moved = await archiveOwnTable(db, 'msg_for_service');
    });
    log(`  ${prototype.seconds.toFixed(1)} s, ${fmtInt(moved)} rows`);

    const ingestTarget = envInt('BENCH_INGEST_ROWS', 200_000);
    log(`ingestion's insert: ${fmtInt(ingestTarget)} rows of ${INGEST_MESSAGES} messages in batches of ${INGEST_BATCH}`);
    const batches = await ingestRows(db, ingestTarget);
    const ingested = batches.reduce((n, b) => n + b.length, 0);
    const created = Date.now();
    for (let m = 0; m < INGEST_MESSAGES; m++) await db.raw('CREATE TABLE ?? LIKE interactions', [ownTableOf(`bench-other-${m}`)]);
    const createMs = (Date.now() - created) / INGEST_MESSAGES;
    const ingestShared = await timedIngest(db, server.pid, batches, false);
    const ingestOwn = await timedIngest(db, server.pid, batches, true);
    log(`  shared ${ingestShared.seconds.toFixed(1)} s, own tables ${ingestOwn.seconds.toFixed(1)} s`);
    const uptimeAfter = uptimeLine();

    const checks = {
      ptShared: (await sqlFingerprint(db, 'archive_from_shared', TARGET)) === fingerprint && (await countRows(db, 'interactions', TARGET)) === 0,
      ptOwn: (await sqlFingerprint(db, 'archive_from_own', TARGET)) === fingerprint,
      prototype: moved === targetRows,
    };
    const [[{ payloads }]] = (await db.raw('SELECT COALESCE(SUM(LENGTH(payload)), 0) AS payloads FROM archive_chunks')) as [{ payloads: string | number }[]];
    log('decoding the chunks into a third table to check them');
    await restoreInto(db, 'msg_restored');
    checks.prototype = checks.prototype && (await sqlFingerprint(db, 'msg_restored', TARGET)) === fingerprint;
    if (!Object.values(checks).every(Boolean)) throw new Error(`rows differ after a run: ${JSON.stringify(checks)} (fingerprint ${fingerprint})`);

    const row = (name: string, t: Timed, client: string) => [
      name,
      t.seconds.toFixed(1),
      fmtInt(targetRows / t.seconds),
      `${(ptShared.seconds / t.seconds).toFixed(2)}x`,
      `${cpuCell(t)} (${client})`,
    ];
    const markdown = [
      `${fmtInt(targetRows)} rows of one message among ${fmtInt(otherRows)}, ${server.description}; fingerprint ${fingerprint} after every run.`,
      '',
      table(
        ['run', 'seconds', 'rows/s', 'vs pt-archiver (shared table)', 'CPU s (MariaDB incl. purge + client)'],
        [
          row('pt-archiver, shared `interactions` (the baseline)', ptShared, 'pt-archiver'),
          row("pt-archiver, the message's own table", ptOwn, 'pt-archiver'),
          row("prototype: own table → verified chunks → DROP TABLE", prototype, 'this process'),
        ],
      ),
      '',
      table(
        [`ingestion's INSERT, ${fmtInt(ingested)} rows of ${INGEST_MESSAGES} messages, batches of ${INGEST_BATCH}`, 'seconds', 'rows/s', 'CPU s (MariaDB incl. purge + client)'],
        [
          ['one INSERT per batch into the shared table', ingestShared, 'shared'] as const,
          [`one INSERT per message and batch into its own table (CREATE TABLE … LIKE: ${createMs.toFixed(0)} ms each)`, ingestOwn, 'own'] as const,
        ].map(([name, t]) => [name, t.seconds.toFixed(1), fmtInt(ingested / t.seconds), cpuCell(t)]),
      ),
      '',
      `The message's own table: data ${fmtMB(ownBytes.data)}, index ${fmtMB(ownBytes.index)}; chunk payloads ${fmtMB(Number(payloads))}; peak RSS of this process ${fmtMB(process.resourceUsage().maxRSS * 1024)}.`,
      '',
      `Load: before \`${uptimeBefore}\`; after \`${uptimeAfter}\`.`,
    ].join('\n');
    process.stdout.write(`\n${markdown}\n\npt-archiver, shared table:\n${ptShared.command}\n${ptShared.statistics}\n\npt-archiver, own table:\n${ptOwn.command}\n${ptOwn.statistics}\n`);
    saveResults('message-table', { targetRows, otherRows, server: server.description, fingerprint, ptShared, ptOwn, prototype, ingest: { rows: ingested, createMs, shared: ingestShared, own: ingestOwn }, markdown });
  } finally {
    await bench.drop();
    await server.stop();
  }
}

exitWhenSettled(main(), 'bench:message-table');
