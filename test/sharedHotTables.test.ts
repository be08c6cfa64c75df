/**
 * Small messages share a hot table (src/storage/hotTables.ts) and move to a table of their own once
 * they reach HOT_TABLE_OWN_FROM_ROWS (src/storage/hotTablePromotion.ts), here 20 rows. Every row of
 * every message stays exactly once, with its id, through ingestion racing the move, archives of a
 * segment beside other messages' rows, rows arriving while a segment drains, restores small and large,
 * and an erasure; a move waits for a restore or an erasure under way.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { InteractionEvent } from '../src/dataplane/ingest/events';
import { ingestEvents } from '../src/dataplane/ingest/ingest';
import type { Db } from '../src/db/knex';
import type { MessageRef } from '../src/shared/types';
import { archiveMessage } from '../src/storage/archiver';
import { beginDrain, currentHotTable, ensureHotTable, sharedHotTables } from '../src/storage/hotTables';
import { promoteSegment } from '../src/storage/hotTablePromotion';
import { restoreMessage } from '../src/storage/restorer';
import { addHotColumn } from '../src/storage/hotTableChanges';
import { changeEveryHotTable } from '../src/storage/hotTableSchema';
import { eraseUserFromMessage } from '../src/privacy/eraseMessage';
import { mysqlOnly } from '../src/archive/mysqlStore';
import { archivedRowCount, hotRows, useThrowawayDatabase } from './support/stack';

const OWN_FROM = 20;
process.env.HOT_TABLE_OWN_FROM_ROWS = String(OWN_FROM);

let eventNo = 0;
const events = (ref: MessageRef, count: number, user = (i: number) => `user-${i % 7}`): InteractionEvent[] =>
  Array.from({ length: count }, (_, i) => {
    const n = eventNo++;
    return {
      eventId: `${ref.kind}-${ref.id}-${n}`,
      type: 'received',
      messageKind: ref.kind,
      messageId: ref.id,
      userId: user(i),
      occurredAt: new Date(Date.UTC(2026, 0, 1) + n * 1000).toISOString(),
      channel: 'email',
    };
  });

const ids = async (db: Db, ref: MessageRef) => (await hotRows(db, ref)).map((r) => String(r.id));

describe('shared hot tables', () => {
  const database = useThrowawayDatabase([
    'interactions',
    'archive_chunks',
    'archive_manifests',
    'move_fences',
    'ingested_events',
    'erasure_messages',
    'user_messages',
    'hot_table_changes',
  ]);
  let db: Db;
  before(() => {
    db = database.get();
  });

  it('keeps small messages as segments of one shared table, each read as its own', async () => {
    const [a, b]: MessageRef[] = [
      { kind: 'campaign', id: 'small-a' },
      { kind: 'canvas', id: 'small-b' },
    ];
    await ingestEvents(db, [...events(a, 5), ...events(b, 3)]);
    const [ta, tb] = [await currentHotTable(db, a), await currentHotTable(db, b)];
    assert.ok(ta?.shared && tb?.shared, 'both are segments');
    assert.equal(ta.name, tb.name, 'of the same shared table');
    assert.notEqual(ta.entryNo, tb.entryNo);
    assert.equal((await hotRows(db, a)).length, 5);
    assert.equal((await hotRows(db, b)).length, 3);
    const [key] = (await db.raw("SHOW INDEX FROM ?? WHERE Key_name = 'PRIMARY'", [ta.name])) as [{ Column_name: string }[]];
    assert.deepEqual(
      key.map((k) => k.Column_name),
      ['message_kind', 'message_id', 'id'],
      'clustered by message',
    );
  });

  it('archives a segment without touching its neighbours, and rows arriving meanwhile go to the other shared table', async () => {
    const [target, neighbour]: MessageRef[] = [
      { kind: 'campaign', id: 'drained' },
      { kind: 'campaign', id: 'beside' },
    ];
    await ingestEvents(db, [...events(target, 12), ...events(neighbour, 9)]);
    const before = await hotRows(db, neighbour);
    // The archive has taken the segment out of service; a late event arrives before it deletes the rows.
    const draining = await beginDrain(db, target, undefined, 1);
    assert.ok(draining?.shared);
    await ingestEvents(db, events(target, 2));
    const late = await currentHotTable(db, target);
    assert.ok(late?.shared);
    assert.notEqual(late.name, draining.name, 'not the shared table being drained');
    const [shared1, shared2] = await sharedHotTables(db);
    assert.deepEqual(new Set([draining.name, late.name]), new Set([shared1.name, shared2.name]));

    const manifest = await archiveMessage(db, target, 1, { chunkRows: 5 });
    assert.equal(manifest.rowCount, 12);
    assert.equal((await hotRows(db, target)).length, 2, 'the late rows stay hot for the next sweep');
    assert.deepEqual(await hotRows(db, neighbour), before, 'the neighbour is untouched');
    const swept = await archiveMessage(db, target, 1, { chunkRows: 5 });
    assert.equal(swept.rowCount, 14);
    assert.equal(await archivedRowCount(db, target), 14);
    assert.deepEqual(await hotRows(db, target), []);
    assert.deepEqual(await hotRows(db, neighbour), before);
  });

  it('moves a message that reaches the threshold to a table of its own, once, while batches race it, keeping every id', async () => {
    const ref: MessageRef = { kind: 'campaign', id: 'growing' };
    const neighbour: MessageRef = { kind: 'campaign', id: 'stays-small' };
    await ingestEvents(db, [...events(ref, 4), ...events(neighbour, 4)]);
    const neighbourRows = await hotRows(db, neighbour);
    // Four writers at once, ten batches of three each: the move happens between them.
    const stored = await Promise.all(
      Array.from({ length: 4 }, async () => {
        let n = 0;
        for (let i = 0; i < 10; i++) n += (await ingestEvents(db, events(ref, 3))).stored;
        return n;
      }),
    );
    const total = 4 + stored.reduce((x, y) => x + y, 0);
    assert.equal(total, 124);
    const table = await currentHotTable(db, ref);
    assert.ok(table && !table.shared, 'a table of its own');
    const rows = await ids(db, ref);
    assert.equal(rows.length, total, 'every row, once');
    assert.equal(new Set(rows).size, total);
    const [[inOwn]] = (await db.raw('SELECT COUNT(*) AS n FROM ??', [table.name])) as [{ n: number }[]];
    assert.equal(Number(inOwn.n), total, 'all of them in its table');
    for (const shared of await sharedHotTables(db)) {
      const [[left]] = (await db.raw('SELECT COUNT(*) AS n FROM ?? WHERE message_kind = ? AND message_id = ?', [
        shared.name,
        ref.kind,
        ref.id,
      ])) as [{ n: number }[]];
      assert.equal(Number(left.n), 0, `nothing of it left in ${shared.name}`);
    }
    const roles = (await db('hot_tables').where({ message_kind: ref.kind, message_id: ref.id }).pluck('role')) as string[];
    assert.deepEqual(roles, ['current']);
    assert.deepEqual(await hotRows(db, neighbour), neighbourRows, 'the neighbour stays, untouched');
    assert.equal((await currentHotTable(db, neighbour))?.shared, true);
  });

  it('archives a moved message in a sweep, and resumes that sweep, though its rows carry ids of an earlier block', async () => {
    const ref: MessageRef = { kind: 'canvas', id: 'moved-late' };
    // Generation 1 from a table of its own (a large message's).
    await ingestEvents(db, events(ref, 5));
    await promoteSegment(db, ref);
    await ingestEvents(db, events(ref, 30));
    const first = await archiveMessage(db, ref, 1, { chunkRows: 4 });
    assert.equal(first.rowCount, 35);
    // Late events: a segment, which then grows into a table numbered above generation 1's, holding the
    // segment's lower ids as well as its own.
    await ingestEvents(db, events(ref, 15));
    assert.equal((await currentHotTable(db, ref))?.shared, true);
    await ingestEvents(db, events(ref, 10));
    const moved = await currentHotTable(db, ref);
    assert.ok(moved && !moved.shared);
    await ingestEvents(db, events(ref, 3));
    const late = await hotRows(db, ref);
    assert.equal(late.length, 28);
    // A sweep cut short after its first chunk, then run again.
    await assert.rejects(
      archiveMessage(db, ref, 1, {
        chunkRows: 4,
        onProgress: () => {
          throw new Error('worker lost');
        },
      }),
      /worker lost/,
    );
    const swept = await archiveMessage(db, ref, 1, { chunkRows: 4 });
    assert.equal(swept.rowCount, 63, 'each late row stored once');
    assert.equal(await archivedRowCount(db, ref), 63);
    assert.deepEqual(await hotRows(db, ref), []);
  });

  it('restores a small generation into a segment and a large one into a table of its own, moving a late segment first', async () => {
    const small: MessageRef = { kind: 'campaign', id: 'restored-small' };
    const large: MessageRef = { kind: 'campaign', id: 'restored-large' };
    await ingestEvents(db, events(small, 8));
    await ingestEvents(db, events(large, 40));
    const [smallRows, largeRows] = [await hotRows(db, small), await hotRows(db, large)];
    await archiveMessage(db, small, 1, { chunkRows: 10 });
    await archiveMessage(db, large, 1, { chunkRows: 10 });
    // A late event of the large one is in a segment when its restore begins.
    await ingestEvents(db, events(large, 1));
    assert.equal((await currentHotTable(db, large))?.shared, true);

    await restoreMessage(db, small, 1);
    await restoreMessage(db, large, 1);
    assert.equal((await currentHotTable(db, small))?.shared, true);
    assert.deepEqual(await hotRows(db, small), smallRows);
    const table = await currentHotTable(db, large);
    assert.ok(table && !table.shared, 'a table of its own');
    const restored = await hotRows(db, large);
    assert.equal(restored.length, 41);
    assert.deepEqual(
      restored.filter((r) => largeRows.some((o) => String(o.id) === String(r.id))),
      largeRows,
      'every archived row back with its id and values',
    );
  });

  it('does not move a segment while a restore or an erasure of the message is under way', async () => {
    const ref: MessageRef = { kind: 'canvas', id: 'busy-segment' };
    await ingestEvents(db, events(ref, 6));
    await db('archive_manifests').insert({
      message_kind: ref.kind,
      message_id: ref.id,
      generation: 1,
      status: 'restoring',
      row_count: 0,
      chunk_count: 0,
    });
    assert.equal(await promoteSegment(db, ref), 'busy');
    assert.equal(await promoteSegment(db, ref, { duringRestore: true }), 'promoted');
    const other: MessageRef = { kind: 'canvas', id: 'erasing-segment' };
    await ingestEvents(db, events(other, 6));
    await db('erasure_messages').insert({ request_id: 'erasure-1', message_kind: other.kind, message_id: other.id, status: 'pending' });
    assert.equal(await promoteSegment(db, other), 'busy');
    await db('erasure_messages').where({ request_id: 'erasure-1' }).update({ status: 'done' });
    assert.equal(await promoteSegment(db, other), 'promoted');
    assert.equal((await hotRows(db, other)).length, 6);
    assert.equal(await promoteSegment(db, other), 'not-shared');
  });

  it("erases a user's rows from one message's segment, leaving the same user's rows of its neighbour", async () => {
    const [erased, kept]: MessageRef[] = [
      { kind: 'campaign', id: 'erase-here' },
      { kind: 'campaign', id: 'not-here' },
    ];
    await ingestEvents(db, [...events(erased, 6, (i) => (i % 2 ? 'ann' : 'bob')), ...events(kept, 4, () => 'ann')]);
    const counts = await eraseUserFromMessage(db, mysqlOnly(), {
      ref: erased,
      userId: 'ann',
      erasedThrough: new Date().toISOString(),
      requestId: 'erase-ann',
    });
    assert.equal(counts.hotRows, 3);
    assert.deepEqual(
      (await hotRows(db, erased)).map((r) => r.user_id),
      ['bob', 'bob', 'bob'],
    );
    assert.equal((await hotRows(db, kept)).length, 4);
  });

  it('takes the shared tables into a schema change of every hot table, and moves a segment with the new column after it', async () => {
    const ref: MessageRef = { kind: 'campaign', id: 'changed-schema' };
    await ingestEvents(db, events(ref, 3));
    const change = addHotColumn('test-shared-note', 'shared_note', 'VARCHAR(16) NULL');
    const run = await changeEveryHotTable(db, change);
    assert.ok(run.finished);
    for (const t of await sharedHotTables(db)) assert.ok(await change.applied(db, t.name), `${t.name} has the column`);
    const { name } = (await currentHotTable(db, ref))!;
    await db(name).where({ message_kind: ref.kind, message_id: ref.id }).update({ shared_note: 'kept' });
    assert.equal(await promoteSegment(db, ref), 'promoted');
    const moved = (await currentHotTable(db, ref))!;
    assert.deepEqual(await db(moved.name).distinct().pluck('shared_note'), ['kept'], 'the new column moved with the rows');
  });

  it('gives every message a table of its own when HOT_TABLE_OWN_FROM_ROWS is 0', async () => {
    const ref: MessageRef = { kind: 'campaign', id: 'own-always' };
    const table = await ensureHotTable(db, ref, { ownFromRows: 0 });
    assert.equal(table.shared, false);
    assert.equal(table.entryNo, table.tableNo);
  });
});
