/**
 * Object storage failing under the S3 store (src/archive/s3Store.ts). The worker runs as a child process
 * whose S3_ENDPOINT is a fault proxy in front of the file's own gateway (test/support/s3FaultProxy.ts),
 * with a short S3_REQUEST_TIMEOUT_MS; each scenario has messages of its own:
 *
 *   1. a random fifth of a message's object requests, in its archive and its restore, answered 503
 *      SlowDown or 500 InternalError, or answered only well after the worker's request timeout;
 *   2. the worker SIGKILLed once the gateway has stored the k-th chunk object, before the worker hears
 *      so: the object is in the bucket and its catalog row is not, and the next attempt writes the same
 *      rows to the same key;
 *   3. the worker SIGKILLed on the manifest.json PUT, once the catalog is finalized: before the gateway
 *      sees the PUT, and (full variant) once it has stored it;
 *   4. the worker SIGKILLed once the gateway has done one of a restore's DeleteObjects, before the
 *      catalog rows of those objects go;
 *   5. the gateway itself SIGKILLed mid-archive and mid-restore: the actor's activity fails, is retried,
 *      and finishes once the gateway is back.
 *
 * After each archive, the message's rows are all in verified chunks, read back from the bucket, and equal
 * the rows it started with by count and checksum; the objects under the generation's prefix are exactly
 * the catalog's keys and manifest.json, whose chunk list is the catalog's. After each restore the rows
 * are hot again, equal to the original, and no object and no catalog row of the generation remains. The
 * actor is expired after each archive and stopped after each restore. Random choices come from the
 * printed seed (FAULTS_SEED replays them; the order requests arrive in still varies from run to run).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { generationPrefix, manifestObjectKey } from '../../src/archive/objectKeys';
import type { ChunkKey } from '../../src/archive/store';
import { embeddedGatewayClientConfig, type EmbeddedGateway } from '../../src/s3/embeddedGateway';
import type { LifecycleStatus, MessageRef } from '../../src/shared/types';
import { lifecycleWorkflowId } from '../../src/shared/workflowId';
import { startS3FaultProxy, type S3Fault, type S3FaultProxy, type S3ProxyCounts, type S3ProxyRequest } from '../support/s3FaultProxy';
import { createStack, seedInteractions, waitFor, type TestStack } from '../support/stack';
import {
  archivedFingerprint,
  bySize,
  FAULTS_MODE,
  hotFingerprint,
  hotRowCount,
  killHard,
  Random,
  reporter,
  rowsInPlace,
  seededRandom,
  sleep,
  verifiedRowCount,
  type RowsFingerprint,
} from './support';

const CHUNK_ROWS = 200;
const ROWS = bySize({ short: 3_000, full: 6_000 });
const CHUNKS = Math.ceil(ROWS / CHUNK_ROWS);
/** The worker's S3_REQUEST_TIMEOUT_MS: a request unanswered this long is abandoned and retried. */
const REQUEST_TIMEOUT_MS = 2_000;
/** How long a late answer is held back: well past the request timeout. */
const LATE_MS = REQUEST_TIMEOUT_MS + 2_000;
const FAULT_RATE = 0.2;
const PUT_KILLS = bySize({ short: 1, full: 3 });
/** The restore of scenario 4 deletes more than one DeleteObjects batch (100 catalog rows each): many small chunks. */
const DELETE_CHUNK_ROWS = 20;
const DELETE_ROWS = bySize({ short: 2_400, full: 4_000 });
const DELETE_KILLS = bySize({ short: 1, full: 2 });
/** Catalog rows the restore deletes per round (src/storage/restorer.ts), so one DeleteObjects each. */
const DELETE_BATCH = 100;
const GENERATION = 1;
const SCENARIO_TIMEOUT_MS = bySize({ short: 4, full: 8 }) * 60_000;

const basename = (key: string) => path.posix.basename(key);

function ordinal(n: number): string {
  const suffixes: Record<number, string> = { 1: 'st', 2: 'nd', 3: 'rd' };
  return `${n}${n % 100 >= 11 && n % 100 <= 13 ? 'th' : (suffixes[n % 10] ?? 'th')}`;
}

describe('the S3 store when object storage fails', () => {
  let stack: TestStack;
  let gateway: EmbeddedGateway;
  let proxy: S3FaultProxy;
  let s3: S3Client;
  let prefix: string;
  let seed: number;
  let worker: ChildProcess | null = null;
  /** The settings the running worker was started with beyond the file's own, to tell whether it must be replaced. */
  let workerExtra = '';

  before(async () => {
    // A TTL far away: each scenario decides when its archive starts (a stop whose stoppedAt is long past).
    stack = await createStack({ archiveStore: 's3', ttl: '1 hour', cleanupInterval: '1 hour', chunkRows: CHUNK_ROWS });
    if (!stack.gateway || !stack.config.s3) throw new Error('the stack has no S3 gateway');
    gateway = stack.gateway;
    prefix = stack.config.s3.prefix;
    proxy = await startS3FaultProxy(gateway.endpoint);
    s3 = new S3Client({ ...embeddedGatewayClientConfig(gateway), maxAttempts: 3 });
    seed = seededRandom('s3', (m) => process.stderr.write(`[faults] ${m}\n`)).seed;
    spawn();
  });
  after(async () => {
    if (worker) await killHard(worker);
    await proxy?.close();
    s3?.destroy();
    await stack?.close();
  });

  /** Each scenario draws from a source of its own, so that its choices do not depend on which scenarios ran before it. */
  const scenarioRandom = (n: number) => new Random((seed + Math.imul(n, 0x9e3779b9)) >>> 0);

  function spawn(extra: Record<string, string> = {}): void {
    worker = stack.spawnWorker({
      S3_ENDPOINT: proxy.endpoint,
      S3_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
      S3_MAX_ATTEMPTS: '5',
      ...extra,
    });
    workerExtra = JSON.stringify(extra);
  }

  /** A worker with these settings, the one running when it has them; another is stopped cleanly first. */
  async function useWorker(extra: Record<string, string> = {}): Promise<void> {
    const running = worker !== null && worker.exitCode === null && worker.signalCode === null;
    if (running && workerExtra === JSON.stringify(extra)) return;
    if (running && worker) {
      const w = worker;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => w.kill('SIGKILL'), 15_000);
        w.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        w.kill('SIGTERM');
      });
    }
    spawn(extra);
  }

  async function killWorker(): Promise<void> {
    if (worker) await killHard(worker);
  }

  const keyOf = (ref: MessageRef): ChunkKey => ({ message_kind: ref.kind, message_id: ref.id, generation: GENERATION });
  const scopeOf = (ref: MessageRef) => `${generationPrefix(prefix, keyOf(ref))}/`;
  const manifestKeyOf = (ref: MessageRef) => manifestObjectKey(prefix, keyOf(ref));
  const isChunkPut = (ref: MessageRef, req: S3ProxyRequest, status: number) =>
    req.kind === 'putObject' && status === 200 && !!req.key?.startsWith(scopeOf(ref)) && req.key.endsWith('.parquet');

  const status = (ref: MessageRef): Promise<LifecycleStatus | null> => stack.lifecycle.status(ref.kind, ref.id).catch(() => null);

  async function seedMessage(ref: MessageRef, rows: number): Promise<RowsFingerprint> {
    await seedInteractions(stack.db, ref, rows, { batch: 2_000 });
    return hotFingerprint(stack.db, ref);
  }

  /** Stopped two hours ago: the deadline has passed, the actor archives at once. */
  async function startArchive(ref: MessageRef): Promise<void> {
    await stack.lifecycle.stop(ref.kind, ref.id, { stoppedAt: new Date(Date.now() - 2 * 3600_000).toISOString() });
  }

  async function isExpired(ref: MessageRef): Promise<boolean> {
    return (await status(ref))?.state === 'expired';
  }

  async function archived(ref: MessageRef, rows: number): Promise<void> {
    const s = await waitFor(
      `${ref.id} expired`,
      async () => {
        const now = await status(ref);
        return now?.state === 'expired' ? now : null;
      },
      240_000,
    );
    assert.equal(s.archive?.generation, GENERATION);
    assert.equal(s.archive?.rowCount, rows);
  }

  async function startRestore(ref: MessageRef, rnd: Random): Promise<string> {
    const requestId = `s3-${ref.id}-${rnd.int(0, 1e9)}`;
    await stack.lifecycle.restore(ref.kind, ref.id, { requestedBy: 'faults@example.com', requestId });
    return requestId;
  }

  async function isRestored(ref: MessageRef, requestId: string): Promise<boolean> {
    const s = await status(ref);
    return s?.lastRestore?.requestId === requestId && s.state === 'stopped';
  }

  async function restored(ref: MessageRef, requestId: string, rows: number): Promise<void> {
    const s = await waitFor(
      `${ref.id} restored`,
      async () => {
        const now = await status(ref);
        return now?.lastRestore?.requestId === requestId && now.state === 'stopped' ? now : null;
      },
      240_000,
    );
    assert.equal(s.lastRestore?.rowCount, rows);
  }

  /** Every object under the generation's prefix, as the gateway lists them. */
  async function bucketKeys(ref: MessageRef): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await s3.send(
        new ListObjectsV2Command({ Bucket: gateway.bucket, Prefix: scopeOf(ref), ...(token ? { ContinuationToken: token } : {}) }),
      );
      for (const o of page.Contents ?? []) if (o.Key) keys.push(o.Key);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return keys.sort();
  }

  interface CatalogChunk {
    seq: number;
    object_key: string;
    row_count: number;
    checksum: string;
  }

  const catalogChunks = (ref: MessageRef): Promise<CatalogChunk[]> =>
    stack.db('archive_chunks').where(keyOf(ref)).orderBy('seq').select<CatalogChunk[]>('seq', 'object_key', 'row_count', 'checksum');

  async function manifestRow(
    ref: MessageRef,
  ): Promise<{ status: string; row_count: number; chunk_count: number; checksum: string | null }> {
    const row = await stack
      .db('archive_manifests')
      .where(keyOf(ref))
      .first<{ status: string; row_count: number; chunk_count: number; checksum: string | null } | undefined>(
        'status',
        'row_count',
        'chunk_count',
        'checksum',
      );
    if (!row) throw new Error(`no catalog manifest for ${ref.id}`);
    return row;
  }

  /** manifest.json, read behind the gateway's back, describes what the catalog holds. */
  async function assertManifestJson(ref: MessageRef, rows: number): Promise<void> {
    const file = gateway.objectPath(manifestKeyOf(ref));
    assert.ok(existsSync(file), `manifest.json of ${ref.id} is in the bucket`);
    const described = JSON.parse(readFileSync(file, 'utf8')) as {
      status: string;
      rowCount: number;
      chunkCount: number;
      checksum: string;
      chunks: { seq: number; key: string; rows: number; rowsSha256: string }[];
    };
    const catalog = await catalogChunks(ref);
    const row = await manifestRow(ref);
    assert.equal(described.status, 'archived');
    assert.equal(described.rowCount, rows);
    assert.equal(described.chunkCount, catalog.length);
    assert.equal(described.checksum, row.checksum);
    assert.deepEqual(
      described.chunks.map((c) => [c.seq, c.key, c.rows, c.rowsSha256]),
      catalog.map((c) => [c.seq, c.object_key, Number(c.row_count), c.checksum]),
      `manifest.json of ${ref.id} lists exactly the catalog's chunks`,
    );
  }

  /** The archive holds exactly the original rows, and the bucket exactly the catalog's objects and manifest.json. */
  async function assertArchived(ref: MessageRef, rows: number, original: RowsFingerprint): Promise<void> {
    assert.equal(await hotRowCount(stack.db, ref), 0, 'no row of the message is hot');
    assert.deepEqual(
      await archivedFingerprint(stack.db, ref, GENERATION, stack.stores),
      original,
      'the archive holds exactly the original rows',
    );
    const row = await manifestRow(ref);
    assert.equal(row.status, 'archived');
    assert.equal(Number(row.row_count), rows);
    const catalog = (await catalogChunks(ref)).map((c) => c.object_key);
    const inBucket = await bucketKeys(ref);
    const orphans = inBucket.filter((k) => k !== manifestKeyOf(ref) && !catalog.includes(k));
    assert.deepEqual(orphans.map(basename), [], 'no object under the generation outside the catalog');
    assert.ok(inBucket.includes(manifestKeyOf(ref)), `manifest.json of ${ref.id} is in the bucket once its archive has finished`);
    assert.deepEqual(inBucket, [...catalog, manifestKeyOf(ref)].sort(), "the bucket holds the catalog's objects and manifest.json");
    await assertManifestJson(ref, rows);
  }

  /** The rows are hot again and equal the original; nothing of the generation is left in the bucket or the catalog. */
  async function assertRestored(ref: MessageRef, original: RowsFingerprint): Promise<void> {
    assert.deepEqual(await hotFingerprint(stack.db, ref), original, 'the restored rows equal the original');
    assert.deepEqual(await catalogChunks(ref), [], 'no catalog row of the generation remains');
    assert.deepEqual((await bucketKeys(ref)).map(basename), [], 'no object of the generation remains');
    assert.equal((await manifestRow(ref)).status, 'restored');
  }

  /**
   * Runs `step` once the gateway has answered the `k`-th request `matches` accepts, among those that
   * arrive from now on; the answer reaches the client only after it. `landed()` is that request once the
   * step is done.
   */
  function onAnswer(
    matches: (req: S3ProxyRequest, status: number) => boolean,
    k: number,
    step: () => Promise<void>,
  ): { landed: () => S3ProxyRequest | null } {
    const armedAt = proxy.lastSeq();
    let seen = 0;
    let firing = false;
    let landed: S3ProxyRequest | null = null;
    proxy.use({
      async answered(req, status) {
        if (firing || req.seq <= armedAt || !matches(req, status) || ++seen < k) return;
        firing = true;
        await step();
        landed = req;
      },
    });
    return { landed: () => landed };
  }

  /** Waits until the step of `onAnswer` has run, or `finished` (asked twice a second: a query of the actor) says the phase ended without it. */
  async function landedOrFinished<T>(what: string, landed: () => T | null, finished: () => Promise<boolean>): Promise<T | null> {
    let askedAt = 0;
    await waitFor(
      what,
      async () => {
        if (landed()) return true;
        if (Date.now() - askedAt < 500) return false;
        askedAt = Date.now();
        return finished();
      },
      240_000,
      20,
    );
    return landed();
  }

  /** The actor's move activity, once Temporal has seen an attempt of it fail. */
  async function failedAttempt(ref: MessageRef): Promise<{ attempt: number; failure: string }> {
    const handle = stack.client.workflow.getHandle(lifecycleWorkflowId(ref));
    return waitFor(
      `an attempt of ${ref.id}'s activity to fail`,
      async () => {
        const { raw } = await handle.describe();
        const failed = (raw.pendingActivities ?? []).find((a) => (a.attempt ?? 0) >= 2 && a.lastFailure);
        return failed ? { attempt: failed.attempt ?? 0, failure: failed.lastFailure?.message ?? '' } : null;
      },
      120_000,
      100,
    );
  }

  function describeCounts(c: S3ProxyCounts): string {
    const r = c.requests;
    return (
      `${r.putObject} PUT, ${r.getObject} GET, ${r.deleteObjects} DeleteObjects, ${r.deleteObject} DELETE object` +
      (r.listObjects + r.headObject + r.other ? `, ${r.listObjects + r.headObject + r.other} other` : '') +
      (c.unreachable ? `; ${c.unreachable} met no gateway` : '')
    );
  }

  it(
    'meets 503 SlowDown, 500 InternalError and late answers on a fifth of its object requests, and loses nothing',
    { timeout: SCENARIO_TIMEOUT_MS },
    async (t) => {
      const say = reporter((m) => t.diagnostic(m));
      const rnd = scenarioRandom(1);
      say(`throttled: seed ${seed}, mode ${FAULTS_MODE}, ${ROWS} rows in ${CHUNKS} chunks`);
      const ref: MessageRef = { kind: 'campaign', id: 's3-throttled' };
      const original = await seedMessage(ref, ROWS);
      await useWorker();
      const scope = scopeOf(ref);
      const late: S3Fault = { kind: 'late', ms: LATE_MS };
      const faults: S3Fault[] = [{ kind: 'slowDown' }, { kind: 'slowDown' }, { kind: 'internalError' }, late];
      // One request is late whatever the draws say, so that every run checks the request timeout.
      const forcedLate = rnd.int(1, CHUNKS);
      let objectRequests = 0;
      proxy.resetCounts();
      proxy.use({
        fault(req) {
          // A DeleteObjects names its keys only in its body, which is still to come: the restore's are this message's.
          const ours = req.kind === 'deleteObjects' || (req.key?.startsWith(scope) && req.kind !== 'listObjects' && req.kind !== 'other');
          if (!ours) return null;
          if (++objectRequests === forcedLate) return late;
          return rnd.next() < FAULT_RATE ? rnd.pick(faults) : null;
        },
      });

      const archiveStarted = Date.now();
      await startArchive(ref);
      await archived(ref, ROWS);
      const archiveSeconds = (Date.now() - archiveStarted) / 1000;
      const archiveCounts = proxy.counts();
      await assertArchived(ref, ROWS, original);

      proxy.resetCounts();
      const restoreStarted = Date.now();
      const requestId = await startRestore(ref, rnd);
      await restored(ref, requestId, ROWS);
      const restoreSeconds = (Date.now() - restoreStarted) / 1000;
      const restoreCounts = proxy.counts();
      proxy.use({});
      await assertRestored(ref, original);

      let injected = 0;
      let lateAnswers = { abandoned: 0, waitedFor: 0 };
      for (const [phase, c, seconds] of [
        ['archive', archiveCounts, archiveSeconds],
        ['restore', restoreCounts, restoreSeconds],
      ] as const) {
        const f = c.faults;
        injected += f.slowDown + f.internalError + f.late;
        lateAnswers = { abandoned: lateAnswers.abandoned + c.late.abandoned, waitedFor: lateAnswers.waitedFor + c.late.waitedFor };
        say(
          `${phase} (${seconds.toFixed(1)} s): ${describeCounts(c)}; injected ${f.slowDown} × 503 SlowDown, ${f.internalError} × 500 InternalError, ` +
            `${f.late} late answers (${c.late.abandoned} given up by the worker, ${c.late.waitedFor} waited for)`,
        );
      }
      say(`${injected} faults injected in all; every row archived and restored once`);
      assert.ok(lateAnswers.abandoned + lateAnswers.waitedFor > 0, 'answers were held back');
      assert.equal(
        lateAnswers.waitedFor,
        0,
        `an answer held back ${LATE_MS} ms, past S3_REQUEST_TIMEOUT_MS=${REQUEST_TIMEOUT_MS}, is given up and the request retried: ` +
          `the worker waited for ${lateAnswers.waitedFor} of ${lateAnswers.abandoned + lateAnswers.waitedFor} instead`,
      );
    },
  );

  it(
    'is SIGKILLed between a chunk object stored and its catalog row; the next attempt writes the same key, and nothing is lost or left over',
    { timeout: SCENARIO_TIMEOUT_MS },
    async (t) => {
      const say = reporter((m) => t.diagnostic(m));
      const rnd = scenarioRandom(2);
      say(`killed after a chunk PUT: seed ${seed}, mode ${FAULTS_MODE}, ${PUT_KILLS} kill(s)`);
      const ref: MessageRef = { kind: 'canvas', id: 's3-killed-after-put' };
      const original = await seedMessage(ref, ROWS);
      await useWorker();
      proxy.resetCounts();
      await startArchive(ref);
      const orphaned: string[] = [];
      for (let i = 1; i <= PUT_KILLS; i++) {
        const remaining = CHUNKS - (await catalogChunks(ref)).length;
        // Before the last chunk: the kill lands while chunks remain to be recorded.
        const k = rnd.int(1, Math.max(1, remaining - 1));
        const armed = onAnswer((req, st) => isChunkPut(ref, req, st), k, killWorker);
        const landed = await landedOrFinished(`the ${ordinal(k)} chunk PUT or the archive's end`, armed.landed, () => isExpired(ref));
        proxy.use({});
        if (!landed?.key) {
          say(`kill ${i}: the archive finished before the ${ordinal(k)} chunk PUT`);
          break;
        }
        const key = landed.key;
        assert.ok(existsSync(gateway.objectPath(key)), `${basename(key)} is stored`);
        const recorded = await catalogChunks(ref);
        assert.ok(!recorded.some((c) => c.object_key === key), `${basename(key)} has no catalog row: the worker never heard it was stored`);
        const { moved, hot } = await rowsInPlace(stack.db, ref, GENERATION, ROWS);
        const outside = (await bucketKeys(ref)).filter((o) => !recorded.some((c) => c.object_key === o));
        assert.ok(outside.includes(key));
        orphaned.push(key);
        say(
          `kill ${i}: once the gateway stored the ${ordinal(k)} chunk PUT of this worker (${basename(key)}), before its catalog row; ` +
            `${moved}/${ROWS} rows in ${recorded.length} recorded chunks, ${hot} hot; objects outside the catalog: ${outside.map(basename).join(', ')}`,
        );
        spawn();
      }
      await archived(ref, ROWS);
      await assertArchived(ref, ROWS, original);
      const catalog = (await catalogChunks(ref)).map((c) => c.object_key);
      for (const key of orphaned) assert.ok(catalog.includes(key), `${basename(key)} was written again, at the same key, and recorded`);
      say(`archive: ${describeCounts(proxy.counts())} (${CHUNKS} chunks)`);

      const requestId = await startRestore(ref, rnd);
      await restored(ref, requestId, ROWS);
      await assertRestored(ref, original);
    },
  );

  it(
    "is SIGKILLed between the catalog's finalization and manifest.json; the next attempt writes it, listing the catalog's chunks",
    { timeout: SCENARIO_TIMEOUT_MS },
    async (t) => {
      const say = reporter((m) => t.diagnostic(m));
      const rnd = scenarioRandom(3);
      const variants = bySize<('before the gateway has it' | 'once the gateway has stored it')[]>({
        short: ['before the gateway has it'],
        full: ['before the gateway has it', 'once the gateway has stored it'],
      });
      say(`killed on the manifest.json PUT: seed ${seed}, mode ${FAULTS_MODE}, ${variants.join('; then ')}`);
      const ref: MessageRef = { kind: 'campaign', id: 's3-killed-on-manifest' };
      const original = await seedMessage(ref, ROWS);
      await useWorker();
      const manifestKey = manifestKeyOf(ref);
      await startArchive(ref);
      for (const variant of variants) {
        let killedFirst = false;
        let armed: { landed: () => S3ProxyRequest | null } | null = null;
        if (variant === 'before the gateway has it') {
          proxy.use({
            async fault(req) {
              if (killedFirst || req.kind !== 'putObject' || req.key !== manifestKey) return null;
              await killWorker();
              killedFirst = true;
              return { kind: 'reset' };
            },
          });
        } else {
          armed = onAnswer((req, st) => req.kind === 'putObject' && req.key === manifestKey && st === 200, 1, killWorker);
        }
        const landed = await landedOrFinished(
          "the manifest.json PUT or the archive's end",
          () => (killedFirst || armed?.landed() ? true : null),
          () => isExpired(ref),
        );
        if (!landed) {
          // The checks after the archive say what is missing.
          say(`the archive finished without a manifest.json PUT to kill ${variant}`);
          proxy.use({});
          break;
        }
        proxy.use({});
        const row = await manifestRow(ref);
        assert.equal(row.status, 'archived', 'the catalog is finalized');
        assert.equal(await verifiedRowCount(stack.db, ref, GENERATION), ROWS);
        assert.equal(await hotRowCount(stack.db, ref), 0, 'the drained table is dropped');
        if (variant === 'before the gateway has it') {
          assert.equal(existsSync(gateway.objectPath(manifestKey)), false, 'manifest.json is not in the bucket yet');
        } else {
          await assertManifestJson(ref, ROWS);
        }
        say(`killed on the manifest.json PUT ${variant}: catalog finalized (${row.chunk_count} chunks, ${Number(row.row_count)} rows)`);
        spawn();
      }
      await archived(ref, ROWS);
      await assertArchived(ref, ROWS, original);

      const requestId = await startRestore(ref, rnd);
      await restored(ref, requestId, ROWS);
      await assertRestored(ref, original);
    },
  );

  it(
    "is SIGKILLed between a restore's DeleteObjects and the delete of those objects' catalog rows; the next attempt finishes the restore",
    { timeout: SCENARIO_TIMEOUT_MS },
    async (t) => {
      const say = reporter((m) => t.diagnostic(m));
      const rnd = scenarioRandom(4);
      const ref: MessageRef = { kind: 'canvas', id: 's3-killed-between-deletes' };
      const chunks = Math.ceil(DELETE_ROWS / DELETE_CHUNK_ROWS);
      say(
        `killed after a DeleteObjects: seed ${seed}, mode ${FAULTS_MODE}, ${DELETE_ROWS} rows in ${chunks} chunks of ${DELETE_CHUNK_ROWS}, ${DELETE_KILLS} kill(s)`,
      );
      const original = await seedMessage(ref, DELETE_ROWS);
      // A generation keeps the chunk size it was begun with: the workers after the kill restore the same small chunks.
      const swapStarted = Date.now();
      await useWorker({ ARCHIVE_CHUNK_ROWS: String(DELETE_CHUNK_ROWS) });
      const swapped = Date.now();
      await startArchive(ref);
      await archived(ref, DELETE_ROWS);
      say(
        `archive: worker of ${DELETE_CHUNK_ROWS}-row chunks in place in ${((swapped - swapStarted) / 1000).toFixed(1)} s, ` +
          `archived ${((Date.now() - swapped) / 1000).toFixed(1)} s later`,
      );
      await assertArchived(ref, DELETE_ROWS, original);
      assert.equal((await catalogChunks(ref)).length, chunks);

      proxy.resetCounts();
      const requestId = await startRestore(ref, rnd);
      const scope = scopeOf(ref);
      for (let i = 1; i <= DELETE_KILLS; i++) {
        const batches = Math.ceil((await catalogChunks(ref)).length / DELETE_BATCH);
        const k = rnd.int(1, Math.max(1, batches));
        const armed = onAnswer(
          (req, st) => req.kind === 'deleteObjects' && st === 200 && req.deleteKeys.some((key) => key.startsWith(scope)),
          k,
          killWorker,
        );
        const landed = await landedOrFinished(`the ${ordinal(k)} DeleteObjects or the restore's end`, armed.landed, () =>
          isRestored(ref, requestId),
        );
        proxy.use({});
        if (!landed) {
          say(`kill ${i}: the restore finished before the ${ordinal(k)} DeleteObjects`);
          break;
        }
        const deleted = landed.deleteKeys.filter((key) => key.startsWith(scope));
        const catalog = await catalogChunks(ref);
        const stillCatalogued = deleted.filter((key) => catalog.some((c) => c.object_key === key));
        const stillStored = deleted.filter((key) => existsSync(gateway.objectPath(key)));
        assert.deepEqual(stillStored.map(basename), [], 'the objects of that DeleteObjects are gone');
        assert.equal(stillCatalogued.length, deleted.length, 'their catalog rows are all still there');
        assert.equal((await manifestRow(ref)).status, 'restored');
        assert.deepEqual(await hotFingerprint(stack.db, ref), original, 'every row is hot again, once');
        const objects = (await bucketKeys(ref)).filter((key) => key !== manifestKeyOf(ref));
        say(
          `kill ${i}: once the gateway did the ${ordinal(k)} DeleteObjects of this worker (${deleted.length} objects, ` +
            `${basename(deleted[0])}..${basename(deleted[deleted.length - 1])}), before their catalog rows went; ` +
            `${catalog.length} catalog rows and ${objects.length} chunk objects left`,
        );
        spawn();
      }
      await restored(ref, requestId, DELETE_ROWS);
      await assertRestored(ref, original);
      say(`restore: ${describeCounts(proxy.counts())}`);
    },
  );

  it(
    'outlives the gateway SIGKILLed mid-archive and mid-restore: the activity fails, is retried, and finishes once the gateway is back',
    { timeout: SCENARIO_TIMEOUT_MS },
    async (t) => {
      const say = reporter((m) => t.diagnostic(m));
      const rnd = scenarioRandom(5);
      say(`gateway killed: seed ${seed}, mode ${FAULTS_MODE}, ${ROWS} rows in ${CHUNKS} chunks`);
      const ref: MessageRef = { kind: 'campaign', id: 's3-gateway-killed' };
      const original = await seedMessage(ref, ROWS);
      await useWorker();
      const scope = scopeOf(ref);

      /** Kills the gateway once it has answered the k-th request `matches` accepts; brings it back once an attempt has failed. */
      async function gatewayDownDuring(
        phase: string,
        what: string,
        matches: (req: S3ProxyRequest, status: number) => boolean,
        k: number,
        finished: () => Promise<boolean>,
        progress: () => Promise<string>,
      ): Promise<void> {
        const armed = onAnswer(matches, k, () => gateway.kill());
        const landed = await landedOrFinished(`the gateway's kill in the ${phase}`, armed.landed, finished);
        proxy.use({});
        assert.ok(landed, `the gateway was killed mid-${phase}`);
        const where = await progress();
        const failed = await failedAttempt(ref);
        const downMs = rnd.int(1_000, 3_000);
        await sleep(downMs);
        await gateway.restart();
        say(
          `${phase}: gateway killed once it had answered the ${ordinal(k)} ${what} (${basename(landed.key ?? landed.kind)}), ${where}; ` +
            `attempt ${failed.attempt - 1} failed ("${failed.failure.slice(0, 120)}"), gateway back ${downMs} ms later`,
        );
      }

      proxy.resetCounts();
      await startArchive(ref);
      await gatewayDownDuring(
        'archive',
        'chunk PUT',
        (req, st) => isChunkPut(ref, req, st),
        rnd.int(2, CHUNKS - 2),
        () => isExpired(ref),
        async () => {
          const { moved, hot } = await rowsInPlace(stack.db, ref, GENERATION, ROWS);
          return `${moved}/${ROWS} rows in recorded chunks, ${hot} hot`;
        },
      );
      await archived(ref, ROWS);
      await assertArchived(ref, ROWS, original);
      say(`archive: ${describeCounts(proxy.counts())}`);

      proxy.resetCounts();
      const requestId = await startRestore(ref, rnd);
      await gatewayDownDuring(
        'restore',
        'chunk GET',
        (req, st) => req.kind === 'getObject' && st === 200 && !!req.key?.startsWith(scope),
        rnd.int(2, CHUNKS - 2),
        () => isRestored(ref, requestId),
        async () => {
          const hot = await hotRowCount(stack.db, ref);
          assert.ok(hot <= ROWS, `no row doubled (${hot} hot)`);
          return `${hot}/${ROWS} rows hot again`;
        },
      );
      await restored(ref, requestId, ROWS);
      await assertRestored(ref, original);
      say(`restore: ${describeCounts(proxy.counts())}`);
    },
  );
});
