/**
 * The worker is SIGKILLed at random points of a user's erasure (the points and the seed are printed).
 * After every kill, each message's rows are the rows before minus some of the user's, none doubled,
 * none changed, and each generation's manifest agrees with its chunks; at the end the user is gone
 * everywhere, every other row is as it was, no replaced chunk object is left in the bucket and every
 * manifest.json says what the catalog says. The same request sent three times (twice at once, once
 * without its id) is one erasure.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { createS3Client } from '../../src/archive/s3Client';
import { ErasureClient } from '../../src/client/erasureClient';
import type { InteractionEvent } from '../../src/dataplane/ingest/events';
import { ingestEvents } from '../../src/dataplane/ingest/ingest';
import { erasureView } from '../../src/privacy/erasureRecords';
import type { MessageRef } from '../../src/shared/types';
import { archiveMessage } from '../../src/storage/archiver';
import { manifestChecksum, type InteractionRow } from '../../src/storage/chunkCodec';
import { createStack, hotRows, waitFor, type TestStack } from '../support/stack';
import { archivedRowsOf, bySize, killHard, reporter, seededRandom, sleep } from './support';

const USER = 'fault-erased-user';
const ARCHIVED = bySize({ short: 6, full: 12 });
const HOT = 2;
const EVENTS = 1_000;
const CHUNK_ROWS = 100;
const KILLS = bySize({ short: 3, full: 8 });

const refs: MessageRef[] = [
  ...Array.from({ length: ARCHIVED }, (_, i) => ({ kind: 'campaign' as const, id: `erasure-fault-${i}` })),
  ...Array.from({ length: HOT }, (_, i) => ({ kind: 'canvas' as const, id: `erasure-fault-hot-${i}` })),
];

let seq = 0;
function events(ref: MessageRef): InteractionEvent[] {
  return Array.from({ length: EVENTS }, (_, i) => ({
    eventId: `${ref.id}-${seq++}`,
    type: 'received' as const,
    messageKind: ref.kind,
    messageId: ref.id,
    userId: i % 7 === 2 ? USER : `someone-${i % 13}`,
    occurredAt: new Date(Date.UTC(2026, 3, 1) + seq * 1000).toISOString(),
  }));
}

/** Every row of a message, hot then archived, as JSON; ids may repeat if a row were doubled. */
async function rowsOf(stack: TestStack, ref: MessageRef): Promise<InteractionRow[]> {
  return [...(await hotRows(stack.db, ref)), ...(await archivedRowsOf(stack.db, ref, 1, stack.stores))];
}

describe('worker SIGKILLed at random points of an erasure', () => {
  let stack: TestStack;
  let worker: ChildProcess;

  before(async () => {
    stack = await createStack({ ttl: '1 hour', cleanupInterval: '1 hour', chunkRows: CHUNK_ROWS });
  });
  after(async () => stack?.close());

  it(`erases with ${KILLS} kills, leaving the user gone and everything else intact`, { timeout: 10 * 60_000 }, async (t) => {
    const say = reporter((m) => t.diagnostic(m));
    const rnd = seededRandom('erasure', say);
    const db = stack.db;
    for (const ref of refs) await ingestEvents(db, events(ref));
    for (const ref of refs.slice(0, ARCHIVED)) await archiveMessage(db, ref, 1, { chunkRows: CHUNK_ROWS, stores: stack.stores });
    const original = new Map<string, Map<string, string>>();
    let theirs = 0;
    for (const ref of refs) {
      const rows = await rowsOf(stack, ref);
      original.set(ref.id, new Map(rows.map((r) => [String(r.id), JSON.stringify(r)])));
      theirs += rows.filter((r) => r.user_id === USER).length;
    }

    /** Rows of the user still anywhere; throws when any row is doubled, changed or another's is missing. */
    async function check(): Promise<number> {
      let left = 0;
      for (const ref of refs) {
        const rows = await rowsOf(stack, ref);
        const before = original.get(ref.id) as Map<string, string>;
        const seen = new Set<string>();
        for (const r of rows) {
          const id = String(r.id);
          assert.ok(!seen.has(id), `${ref.id}: row ${id} is doubled`);
          seen.add(id);
          assert.equal(JSON.stringify(r), before.get(id), `${ref.id}: row ${id} is unchanged`);
          if (r.user_id === USER) left += 1;
        }
        for (const [id, json] of before) {
          if (!seen.has(id)) assert.equal((JSON.parse(json) as InteractionRow).user_id, USER, `${ref.id}: row ${id} of another is gone`);
        }
        const m = await db('archive_manifests')
          .where({ message_kind: ref.kind, message_id: ref.id, generation: 1 })
          .first<{ row_count: number; checksum: string } | undefined>('row_count', 'checksum');
        if (m) {
          const chunks = await db('archive_chunks')
            .where({ message_kind: ref.kind, message_id: ref.id, generation: 1 })
            .orderBy('seq')
            .select<{ row_count: number; checksum: string }[]>('row_count', 'checksum');
          assert.equal(
            Number(m.row_count),
            chunks.reduce((n, c) => n + Number(c.row_count), 0),
            `${ref.id}: manifest counts its chunks`,
          );
          assert.equal(m.checksum, manifestChecksum(chunks.map((c) => c.checksum)), `${ref.id}: manifest checksum`);
        }
      }
      return left;
    }

    worker = stack.spawnWorker();
    const erasures = new ErasureClient(stack.client, db);
    const requestId = `fault-${rnd.int(0, 1e9)}`;
    const [first, second] = await Promise.all([
      erasures.start({ userId: USER, requestedBy: 'faults@example.com', requestId }),
      erasures.start({ userId: USER, requestedBy: 'faults@example.com', requestId }),
    ]);
    const third = await erasures.start({ userId: USER, requestedBy: 'faults@example.com' });
    assert.deepEqual([first.requestId, second.requestId, third.requestId], [requestId, requestId, requestId]);
    assert.deepEqual([first.attached || second.attached, third.attached], [true, true]);

    /** Rows of every message, in chunks and hot: cheap, read while the worker runs (check() is for after a kill). */
    const totalRows = async (): Promise<number> => {
      const archived = await db('archive_chunks').sum<{ n: string | null }>('row_count as n').first();
      let hot = 0;
      for (const ref of refs) hot += (await hotRows(db, ref)).length;
      return Number(archived?.n ?? 0) + hot;
    };
    let lastTotal = await totalRows();
    for (let k = 0; k < KILLS; k++) {
      await waitFor(
        'the erasure to make progress',
        async () => ((await totalRows()) < lastTotal || (await erasureView(db, requestId))?.status !== 'running' ? true : null),
        180_000,
        50,
      );
      if ((await erasureView(db, requestId))?.status !== 'running') {
        say(`finished before kill ${k + 1}`);
        break;
      }
      const delayMs = rnd.int(0, 400);
      await sleep(delayMs);
      await killHard(worker);
      const left = await check();
      lastTotal = await totalRows();
      say(`kill ${k + 1} (+${delayMs} ms after progress): ${left} of ${theirs} rows of the user left`);
      worker = stack.spawnWorker();
    }

    const done = await waitFor(
      'the erasure to finish',
      async () => {
        const v = await erasureView(db, requestId);
        return v && v.status !== 'running' ? v : null;
      },
      300_000,
    );
    assert.equal(done.status, 'done', JSON.stringify(done));
    assert.equal(await check(), 0);
    assert.equal((await db('erasure_requests')).length, 1, 'one erasure, however often it was asked for');
    assert.equal((await db('archive_orphans')).length, 0);

    // No object outlives its catalog row, and each manifest.json says what the catalog says.
    if (stack.config.s3 && stack.gateway) {
      const s3 = createS3Client(stack.config.s3);
      const listed: string[] = [];
      let token: string | undefined;
      do {
        const page = await s3.send(
          new ListObjectsV2Command({ Bucket: stack.config.s3.bucket, ...(token ? { ContinuationToken: token } : {}) }),
        );
        for (const o of page.Contents ?? []) if (o.Key) listed.push(o.Key);
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      const named = (await db('archive_chunks').whereNotNull('object_key').pluck('object_key')) as string[];
      assert.deepEqual(listed.filter((k) => k.endsWith('.parquet')).sort(), [...named].sort());
      for (const ref of refs.slice(0, ARCHIVED)) {
        const key = listed.find((k) => k.includes(`/${ref.id}/gen-1/manifest.json`));
        assert.ok(key, `${ref.id} has its manifest.json`);
        const body = await (await s3.send(new GetObjectCommand({ Bucket: stack.config.s3.bucket, Key: key }))).Body?.transformToString();
        const described = JSON.parse(body ?? '{}') as { checksum: string; rowCount: number };
        const m = await db('archive_manifests')
          .where({ message_kind: ref.kind, message_id: ref.id, generation: 1 })
          .first<{ checksum: string; row_count: number }>('checksum', 'row_count');
        assert.deepEqual([described.checksum, described.rowCount], [m?.checksum, Number(m?.row_count)]);
      }
      s3.destroy();
    }
    await killHard(worker);
  });
});
