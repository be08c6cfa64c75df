/**
 * A data subject's access request at scale: one user who appears in 1,000 archived messages of 10,000
 * rows each and in 100 hot ones, answered by the reader behind GET /v1/users/{id}/interactions.
 *
 *   npm run bench:privacy
 *   BENCH_ARCHIVED_MESSAGES=100 BENCH_HOT_MESSAGES=10 npm run bench:privacy      a quick look
 *
 * The archived messages are written straight into the archive store (the embedded S3 gateway over a
 * temporary directory, or MySQL with BENCH_ARCHIVE_STORE=mysql) through the store's own write and
 * catalog record, chunks of 5,000 rows as the worker cuts them; the hot ones into their own tables.
 * Every message holds the user in BENCH_USER_ROWS rows (2) at random places among users drawn from a
 * million. Reports the time, the chunks considered and read, and the rows found, with one codec thread
 * (ARCHIVE_CODEC_THREADS' default) and with two; the target is under 10 s. Runs on a private MariaDB
 * (bench/lib/server.ts) or BENCH_MYSQL_URL.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { rmSync } from 'node:fs';
import { configuredStores } from '../src/archive/configuredStores';
import type { ArchiveStore, WrittenChunk } from '../src/archive/store';
import { archiveStoreSettings } from '../src/config';
import type { Db } from '../src/db/knex';
import { emptyAccessStats, userInteractions, type UserAccessStats } from '../src/privacy/userInteractions';
import { embeddedGatewayEnv } from '../src/s3/embeddedGateway';
import { startBenchGateway } from './lib/gateway';
import type { MessageRef } from '../src/shared/types';
import { canonicalChunkOfRowArrays, INTERACTION_COLUMNS, manifestChecksum, USER_ID_INDEX, type RowArray } from '../src/storage/chunkCodec';
import { ensureHotTable } from '../src/storage/hotTables';
import { createBenchDatabase } from './lib/dataset';
import { fmtInt } from './lib/proc';
import { envInt, log, saveResults, table, verdict } from './lib/report';
import { startBenchServer } from './lib/server';

const CHUNK_ROWS = 5_000;
const USER = 'bench-privacy-subject';
const EVENT_TYPES = ['received', 'opened', 'clicked', 'converted'];

/** One message's rows, ids from `firstId` on, with the user at `userRows` random places. */
function messageRows(ref: MessageRef, firstId: bigint, count: number, userRows: number): RowArray[] {
  const places = new Set<number>();
  while (places.size < Math.min(userRows, count)) places.add(randomInt(count));
  const day = Date.UTC(2026, 0, 1) + randomInt(300) * 86_400_000;
  return Array.from({ length: count }, (_, i) => [
    String(firstId + BigInt(i)),
    `${ref.id}-${i}-${randomBytes(6).toString('hex')}`,
    ref.kind,
    ref.id,
    places.has(i) ? USER : `bench-user-${randomInt(1_000_000)}`,
    EVENT_TYPES[i % EVENT_TYPES.length],
    ref.kind === 'campaign' ? `variant-${i % 3}` : null,
    ref.kind === 'canvas' ? `step-${i % 4}` : null,
    null,
    null,
    'email',
    new Date(day + i * 997).toISOString().slice(0, 23).replace('T', ' '),
  ]);
}

/** Chunks written, and of them the ones holding the user. */
let chunksWritten = 0;
let holdingChunks = 0;

/** Writes a message's rows as generation 1 of the store, archived, as the archiver would have. */
async function archiveStraight(db: Db, store: ArchiveStore, ref: MessageRef, rows: RowArray[]): Promise<void> {
  const key = { message_kind: ref.kind, message_id: ref.id, generation: 1 };
  const written: { seq: number; chunk: WrittenChunk }[] = [];
  for (let seq = 1, at = 0; at < rows.length; seq += 1, at += CHUNK_ROWS) {
    const slice = rows.slice(at, at + CHUNK_ROWS);
    chunksWritten += 1;
    if (slice.some((r) => r[USER_ID_INDEX] === USER)) holdingChunks += 1;
    const chunk = await store.write(key, seq, canonicalChunkOfRowArrays(slice));
    written.push({ seq, chunk });
  }
  await db.transaction(async (trx) => {
    for (const { seq, chunk } of written) await store.record(trx, key, seq, chunk);
    await trx('archive_manifests').insert({
      ...key,
      status: 'archived',
      user_messages_kept: true,
      store: store.name,
      chunk_rows: CHUNK_ROWS,
      row_count: rows.length,
      chunk_count: written.length,
      compressed_bytes: written.reduce((n, w) => n + w.chunk.bytes, 0),
      checksum: manifestChecksum(written.map((w) => w.chunk.checksum)),
      archived_at: trx.raw('CURRENT_TIMESTAMP(3)'),
    });
  });
}

/** Runs `fn` over `items`, `width` at a time. */
async function inParallel<T>(items: readonly T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

async function main(): Promise<void> {
  const archivedMessages = envInt('BENCH_ARCHIVED_MESSAGES', 1_000);
  const hotMessages = envInt('BENCH_HOT_MESSAGES', 100);
  const rowsPerMessage = envInt('BENCH_MESSAGE_ROWS', 10_000);
  const userRows = envInt('BENCH_USER_ROWS', 2);
  const server = await startBenchServer(log);
  const gateway = process.env.BENCH_ARCHIVE_STORE === 'mysql' ? null : await startBenchGateway();
  const settings = gateway ? archiveStoreSettings({ ...embeddedGatewayEnv(gateway) }) : archiveStoreSettings({ ARCHIVE_STORE: 'mysql' });
  const archive = configuredStores({ ...settings, archiveCodecThreads: 1, archiveChunkRows: CHUNK_ROWS });
  const bench = await createBenchDatabase(server.url, `bench_privacy_${randomBytes(3).toString('hex')}`);
  try {
    const db = bench.db;
    const store = archive.stores.target;
    log(
      `privacy benchmark: ${fmtInt(archivedMessages)} archived and ${fmtInt(hotMessages)} hot messages of ${fmtInt(rowsPerMessage)} rows, ` +
        `the user in ${userRows} rows of each; archive store ${store.location}; ${server.description}`,
    );
    const refs = (n: number, prefix: string): MessageRef[] =>
      Array.from({ length: n }, (_, i) => ({ kind: i % 2 ? 'canvas' : 'campaign', id: `${prefix}-${i}` }));
    const archived = refs(archivedMessages, 'privacy-archived');
    const hot = refs(hotMessages, 'privacy-hot');

    let started = performance.now();
    let done = 0;
    await inParallel(archived, 4, async (ref) => {
      const firstId = BigInt(archived.indexOf(ref) + 1) * 2n ** 32n;
      await archiveStraight(db, store, ref, messageRows(ref, firstId, rowsPerMessage, userRows));
      if (++done % 100 === 0) log(`  ${fmtInt(done)} archived messages written`);
    });
    log(`archived messages written in ${((performance.now() - started) / 1000).toFixed(0)} s`);
    started = performance.now();
    for (const ref of hot) {
      const t = await ensureHotTable(db, ref);
      const rows = messageRows(ref, 0n, rowsPerMessage, userRows);
      const cols = INTERACTION_COLUMNS.filter((c) => c !== 'id');
      for (let at = 0; at < rows.length; at += 1_000) {
        await db(t.name).insert(
          rows.slice(at, at + 1_000).map((r) => Object.fromEntries(cols.map((c) => [c, r[INTERACTION_COLUMNS.indexOf(c)]]))),
        );
      }
    }
    log(`hot messages written in ${((performance.now() - started) / 1000).toFixed(0)} s`);
    const pairs = [...archived, ...hot].map((m) => ({ user_id: USER, message_kind: m.kind, message_id: m.id }));
    for (let at = 0; at < pairs.length; at += 1_000) await db('user_messages').insert(pairs.slice(at, at + 1_000));

    const expectedRows = (archivedMessages + hotMessages) * Math.min(userRows, rowsPerMessage);
    // The same request with one codec thread (the default) and with two, each on stores of its own.
    const runs: { threads: number; seconds: number; stats: UserAccessStats; rows: number; archivedRows: number }[] = [];
    for (const threads of [1, 2]) {
      const reader = configuredStores({ ...settings, archiveCodecThreads: threads, archiveChunkRows: CHUNK_ROWS });
      try {
        const stats = emptyAccessStats();
        const started = performance.now();
        let rows = 0;
        let archivedRows = 0;
        for await (const item of userInteractions(db, reader.stores, USER, stats)) {
          rows += 1;
          if (item.source === 'archived') archivedRows += 1;
        }
        const seconds = (performance.now() - started) / 1000;
        if (rows !== expectedRows) throw new Error(`found ${rows} rows of the user, expected ${expectedRows}`);
        runs.push({ threads, seconds, stats, rows, archivedRows });
        log(`access with ${threads} codec thread(s): ${seconds.toFixed(2)} s`);
      } finally {
        await reader.close();
      }
    }
    const markdown = [
      table(
        ['access request', 'seconds', 'messages', 'hot tables read', 'chunks considered', 'chunks read', 'rows (archived)'],
        runs.map((r) => [
          `one user, ARCHIVE_CODEC_THREADS=${r.threads}`,
          r.seconds.toFixed(2),
          fmtInt(r.stats.messages),
          fmtInt(r.stats.hotTablesRead),
          fmtInt(r.stats.chunksConsidered),
          fmtInt(r.stats.chunksRead),
          `${fmtInt(r.rows)} (${fmtInt(r.archivedRows)})`,
        ]),
      ),
      '',
      table(
        ['target', 'figure', 'verdict'],
        runs.map((r) => [
          `access for the user < 10 s (${r.threads} codec thread${r.threads > 1 ? 's' : ''})`,
          `${r.seconds.toFixed(2)} s`,
          verdict(r.seconds < 10),
        ]),
      ),
      '',
      `The user's rows are in ${fmtInt(holdingChunks)} of the ${fmtInt(chunksWritten)} archived chunks; the other chunks read are the filters' false positives.`,
    ].join('\n');
    const file = saveResults('privacy', {
      archivedMessages,
      hotMessages,
      rowsPerMessage,
      userRows,
      store: store.name,
      holdingChunks,
      chunksWritten,
      runs,
      server: server.description,
      markdown,
    });
    log(`results: ${file}`);
    process.stdout.write(`${markdown}\n`);
  } finally {
    if (!process.env.BENCH_KEEP) await bench.drop();
    await archive.close();
    if (gateway) {
      await gateway.stop();
      rmSync(gateway.dataDir, { recursive: true, force: true });
    }
    await server.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? err.stack : err);
    process.exit(1);
  },
);
