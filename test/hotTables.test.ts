/**
 * A table or segment per message (src/storage/hotTables.ts): callers racing to make a new message's
 * table end up with one, and ingestion running while archives take the table out of service (the next batch
 * making a new one) loses and doubles nothing.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { InteractionEvent } from '../src/dataplane/ingest/events';
import { ingestEvents } from '../src/dataplane/ingest/ingest';
import type { Db } from '../src/db/knex';
import type { MessageRef } from '../src/shared/types';
import { archiveMessage } from '../src/storage/archiver';
import { currentHotTables, ensureHotTable, firstIdOf, hotTableName } from '../src/storage/hotTables';
import { archivedRowCount, hotRows, useThrowawayDatabase } from './support/stack';

const event = (ref: MessageRef, n: number): InteractionEvent => ({
  eventId: `${ref.id}-${n}`,
  type: 'received',
  messageKind: ref.kind,
  messageId: ref.id,
  userId: `user-${n % 17}`,
  occurredAt: new Date(Date.UTC(2026, 0, 1) + n * 1000).toISOString(),
  channel: 'email',
});

describe('hot tables', () => {
  const database = useThrowawayDatabase(['interactions', 'archive_chunks', 'archive_manifests', 'move_fences', 'ingested_events']);
  let db: Db;
  before(() => {
    db = database.get();
  });

  it('refuses a table number that is not a plain positive integer', () => {
    for (const bad of ['0', '-1', '1; DROP TABLE x', '1e3', '', '12345678'])
      assert.throws(() => hotTableName(bad), /not a hot table number/);
    assert.equal(hotTableName('42'), 'interactions_42');
    assert.equal(firstIdOf('3'), String(3n * 2n ** 40n + 1n));
  });

  it('gives callers racing for a new message one table', async () => {
    const ref: MessageRef = { kind: 'campaign', id: 'raced' };
    const tables = await Promise.all(Array.from({ length: 12 }, () => ensureHotTable(db, ref)));
    assert.equal(new Set(tables.map((t) => t.entryNo)).size, 1);
    const roles = (await db('hot_tables').where({ message_kind: ref.kind, message_id: ref.id }).pluck('role')) as string[];
    assert.ok(
      roles.filter((r) => r === 'current').length === 1 && roles.length <= 2,
      `one current table (and at most one made spare): ${roles.join(',')}`,
    );
    // Ids are exact: RACED is another message, with an entry of its own.
    assert.notEqual((await ensureHotTable(db, { kind: 'campaign', id: 'RACED' })).entryNo, tables[0].entryNo);
  });

  it('stores concurrent batches that all bring the same new messages, each event once', async () => {
    // Six batches in flight at once, each with events of the same 25 messages none of which has a table
    // yet: the tables are made beside the batches' transactions without a deadlock reaching the caller.
    let n = 0;
    const batch = () =>
      Array.from({ length: 500 }, () => {
        const i = n++;
        return event({ kind: 'campaign', id: `new-${i % 25}` }, i);
      });
    const results = await Promise.all(
      Array.from({ length: 6 }, async () => (await ingestEvents(db, batch())).stored + (await ingestEvents(db, batch())).stored),
    );
    assert.equal(
      results.reduce((a, b) => a + b, 0),
      6_000,
    );
    const tables = (
      await db('hot_tables').where({ role: 'current' }).andWhere('message_id', 'like', 'new-%').count<{ n: number }[]>('* as n')
    )[0].n;
    assert.equal(Number(tables), 25, 'one current table per message');
    let rows = 0;
    for (let m = 0; m < 25; m++) rows += (await hotRows(db, { kind: 'campaign', id: `new-${m}` })).length;
    assert.equal(rows, 6_000);
  });

  it('writes events whose message ids differ only in case to two entries, as they are two messages', async () => {
    const [a, b]: MessageRef[] = [
      { kind: 'campaign', id: 'Cased' },
      { kind: 'campaign', id: 'cased' },
    ];
    await ingestEvents(db, [event(a, 1)]);
    assert.equal((await ingestEvents(db, [event(a, 2), event(b, 3)])).stored, 2);
    const tables = await currentHotTables(db, [a, b]);
    assert.ok(tables.get(a) && tables.get(b));
    assert.notEqual(tables.get(b)?.entryNo, tables.get(a)?.entryNo);
    assert.deepEqual(
      (await hotRows(db, a)).map((r) => r.message_id),
      ['Cased', 'Cased'],
    );
    assert.deepEqual(
      (await hotRows(db, b)).map((r) => r.message_id),
      ['cased'],
    );
  });

  it('loses and doubles nothing when ingestion runs while archives take the table out of service', async () => {
    const ref: MessageRef = { kind: 'canvas', id: 'busy' };
    const batches = 40;
    const perBatch = 50;
    let ingested = 0;
    const writer = (async () => {
      for (let b = 0; b < batches; b++) {
        const r = await ingestEvents(
          db,
          Array.from({ length: perBatch }, (_, i) => ({ ...event(ref, b * perBatch + i), stepId: 'step-1' })),
        );
        ingested += r.stored;
      }
    })();
    // Sweeps of one generation, back to back, while the writer runs.
    let sweeps = 0;
    let writing = true;
    void writer.finally(() => {
      writing = false;
    });
    while (writing) {
      await archiveMessage(db, ref, 1, { chunkRows: 30 });
      sweeps += 1;
    }
    await writer;
    const manifest = await archiveMessage(db, ref, 1, { chunkRows: 30 });
    assert.equal(ingested, batches * perBatch);
    assert.equal(manifest.rowCount, ingested, `every row archived once over ${sweeps + 1} archives`);
    assert.equal(await archivedRowCount(db, ref), ingested);
    assert.deepEqual(await hotRows(db, ref), []);
    const chunks = await db('archive_chunks')
      .where({ message_kind: ref.kind, message_id: ref.id })
      .select<{ first_id: string; last_id: string }[]>('first_id', 'last_id');
    const spans = chunks.map((c) => [BigInt(c.first_id), BigInt(c.last_id)] as const).sort((a, b) => (a[0] < b[0] ? -1 : 1));
    for (let i = 1; i < spans.length; i++) assert.ok(spans[i][0] > spans[i - 1][1], 'chunks never overlap: no row stored twice');
    assert.ok(sweeps > 1, 'the archives ran while rows were being written');
  });
});
