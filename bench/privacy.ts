/**
 * A data subject's access and erasure requests at scale: one user who appears in 1,000 archived messages
 * of 10,000 rows each and in 100 hot ones, answered by the reader behind GET /v1/users/{id}/interactions,
 * then erased as DELETE /v1/users/{id} erases: through each message's actor, on the production worker
 * (bench/lib/stack.ts) and a Temporal dev server of its own.
 *
 *   npm run bench:privacy
 *   BENCH_ARCHIVED_MESSAGES=100 BENCH_HOT_MESSAGES=10 npm run bench:privacy      a quick look
 *
 * The archived messages are written straight into the archive store (the embedded S3 gateway over a
 * temporary directory, or MySQL with BENCH_ARCHIVE_STORE=mysql) through the store's own write and
 * catalog record, chunks of 5,000 rows as the worker cuts them; the hot ones into their own tables.
 * Every message holds the user in BENCH_USER_ROWS rows (2) at random places among users drawn from a
 * million. Reports the time, the chunks considered and read, and the rows found, with one codec thread
 * (ARCHIVE_CODEC_THREADS' default) and with two; the target is under 10 s. The erasure reports its time
 * (target under 5 minutes), chunks read and rewritten and bytes rewritten, and checks that the user is
 * gone and every other row is still there. Runs on a private MariaDB (bench/lib/server.ts) or
 * BENCH_MYSQL_URL.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { rmSync } from 'node:fs';
import { configuredStores } from '../src/archive/configuredStores';
import type { ArchiveStore, ArchiveStores, WrittenChunk } from '../src/archive/store';
import { ErasureClient } from '../src/client/erasureClient';
import { erasureView, type ErasureView } from '../src/privacy/erasureRecords';
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
import { spawnBenchWorker, startBenchTemporal } from './lib/stack';

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
    const erasure = await eraseUser(
      bench.url,
      gateway ? embeddedGatewayEnv(gateway) : { ARCHIVE_STORE: 'mysql' },
      db,
      archive.stores,
      archived,
      hot,
      {
        userRows: expectedRows,
        otherArchivedRows: archivedMessages * rowsPerMessage - archivedMessages * Math.min(userRows, rowsPerMessage),
      },
    );
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
      table(
        [
          'erasure request',
          'seconds',
          'messages',
          'rows erased hot',
          'rows erased archived',
          'chunks read',
          'chunks rewritten',
          'bytes rewritten',
        ],
        [
          [
            "one user, through each message's actor",
            erasure.seconds.toFixed(1),
            fmtInt(erasure.view.messages.done),
            fmtInt(erasure.view.hotRows),
            fmtInt(erasure.view.archivedRows),
            fmtInt(erasure.view.chunksRead),
            fmtInt(erasure.view.chunksRewritten),
            fmtInt(erasure.view.bytesRewritten),
          ],
        ],
      ),
      '',
      table(
        ['target', 'figure', 'verdict'],
        [['erasure of the user < 5 minutes', `${erasure.seconds.toFixed(1)} s`, verdict(erasure.seconds < 300)]],
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
      erasure: { seconds: erasure.seconds, ...erasure.view, userId: undefined, requestedBy: undefined },
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

/**
 * Erases the user as the API does (ErasureClient: recorded, then the erasure workflow through each
 * message's actor) on the production worker, and checks the outcome: no row of the user anywhere, every
 * other archived row still there.
 */
async function eraseUser(
  mysqlUrl: string,
  storeEnv: Record<string, string>,
  db: Db,
  stores: ArchiveStores,
  archived: readonly MessageRef[],
  hot: readonly MessageRef[],
  expected: { userRows: number; otherArchivedRows: number },
): Promise<{ seconds: number; view: ErasureView }> {
  const temporal = await startBenchTemporal();
  const worker = spawnBenchWorker({ temporalAddress: temporal.address, mysqlUrl, ttl: '1 day', chunkRows: CHUNK_ROWS, extra: storeEnv });
  try {
    // Every launched message has its actor (the archived ones expired, the hot ones active), as on a
    // platform: started here from availability records, before the clock starts.
    const record = (ref: MessageRef, state: 'expired' | 'active') => ({
      kind: ref.kind,
      message_id: ref.id,
      state,
      available: state === 'active',
      generation: state === 'expired' ? 1 : 0,
      revision: 1,
    });
    await db('message_availability').insert([...archived.map((r) => record(r, 'expired')), ...hot.map((r) => record(r, 'active'))]);
    const at = performance.now();
    await inParallel([...archived, ...hot], 16, (ref) => temporal.lifecycle.updateDetails(ref.kind, ref.id, { name: ref.id }));
    for (;;) {
      const [{ n }] = await db('message_availability').where('revision', '<', 2).count<{ n: number }[]>('* as n');
      const [{ m }] = await db('archive_manifests').whereNot({ status: 'archived' }).count<{ m: number }[]>('* as m');
      if (Number(n) === 0 && Number(m) === 0) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    await new Promise((r) => setTimeout(r, 3_000));
    log(`${fmtInt(archived.length + hot.length)} actors started in ${((performance.now() - at) / 1000).toFixed(0)} s`);
    const started = performance.now();
    const { requestId } = await new ErasureClient(temporal.client, db).start({ userId: USER, requestedBy: 'bench@example.com' });
    let view: ErasureView | null = null;
    let shown = -1;
    for (;;) {
      view = await erasureView(db, requestId);
      if (!view) throw new Error(`erasure ${requestId} is not recorded`);
      if (view.status !== 'running') break;
      if (view.messages.done !== shown && view.messages.done % 100 === 0) log(`  erasure: ${fmtInt(view.messages.done)} messages done`);
      shown = view.messages.done;
      await new Promise((r) => setTimeout(r, 200));
    }
    const seconds = (performance.now() - started) / 1000;
    log(`erasure ${view.status} in ${seconds.toFixed(1)} s`);
    if (view.status !== 'done') throw new Error(`the erasure ended ${view.status}: ${view.error ?? ''}`);
    if (view.hotRows + view.archivedRows !== expected.userRows) {
      throw new Error(`the erasure removed ${view.hotRows + view.archivedRows} rows, the user had ${expected.userRows}`);
    }
    const left = emptyAccessStats();
    let found = 0;
    for await (const item of userInteractions(db, stores, USER, left)) found += item.row.user_id === USER ? 1 : 0;
    if (found > 0) throw new Error(`${found} rows of the user are left after the erasure`);
    const archivedNow = await db('archive_chunks').sum<{ n: string }>('row_count as n').first();
    if (Number(archivedNow?.n) !== expected.otherArchivedRows) {
      throw new Error(`${archivedNow?.n} archived rows after the erasure, expected ${expected.otherArchivedRows}`);
    }
    return { seconds, view };
  } finally {
    await worker.stop();
    await temporal.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? err.stack : err);
    process.exit(1);
  },
);
