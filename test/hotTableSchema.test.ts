/**
 * A schema change of every hot table (src/storage/hotTableSchema.ts): the template first, then each
 * table in order, with progress; a run cut short goes on from its last table, a change run again does
 * nothing, tables made meanwhile have the change, and no row is touched.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { ingestEvents } from '../src/dataplane/ingest/ingest';
import type { Db } from '../src/db/knex';
import type { MessageRef } from '../src/shared/types';
import { addHotColumn, bringUpToDate } from '../src/storage/hotTableChanges';
import { changeEveryHotTable, type HotTableChangeProgress } from '../src/storage/hotTableSchema';
import { currentHotTable, HOT_TABLE_TEMPLATE } from '../src/storage/hotTables';
import { hotRowCount, useThrowawayDatabase } from './support/stack';

// Every message with a table of its own, as large messages have: the change runs table by table. The
// shared tables' part is in test/sharedHotTables.test.ts.
process.env.HOT_TABLE_OWN_FROM_ROWS = '0';

const ref = (n: number): MessageRef => ({ kind: 'campaign', id: `schema-${n}` });

async function store(db: Db, refs: readonly MessageRef[]): Promise<void> {
  await ingestEvents(
    db,
    refs.map((r, i) => ({
      eventId: `${r.id}-event`,
      type: 'received',
      messageKind: r.kind,
      messageId: r.id,
      userId: `user-${i}`,
      occurredAt: '2026-01-01T00:00:00.000Z',
      channel: 'email',
    })),
  );
}

describe('a schema change of every hot table', () => {
  const database = useThrowawayDatabase(['interactions', 'hot_table_changes', 'ingested_events', 'user_messages']);
  let db: Db;
  before(() => {
    db = database.get();
  });

  it('changes the template and every table, resumes a run cut short, and does nothing the second time', async () => {
    const change = addHotColumn('test-note-column', 'note', 'VARCHAR(16) NULL');
    const has = async (table: string) => change.applied(db, table);
    const first = Array.from({ length: 30 }, (_, i) => ref(i));
    await store(db, first);
    const tables = await Promise.all(first.map(async (r) => (await currentHotTable(db, r))!.name));

    // Cut short after ten tables, as a crash or a deploy would.
    const seen: HotTableChangeProgress[] = [];
    await assert.rejects(
      changeEveryHotTable(db, change, (p) => {
        seen.push(p);
        if (p.done === 10) throw new Error('cut short');
      }),
      /cut short/,
    );
    assert.ok(await has(HOT_TABLE_TEMPLATE), 'the template changed first');
    assert.deepEqual(
      seen.map((p) => [p.done, p.total]),
      Array.from({ length: 10 }, (_, i) => [i + 1, 30]),
    );
    const changedSoFar = await Promise.all(tables.map(has));
    assert.equal(changedSoFar.filter(Boolean).length, 10);
    const progress = await db('hot_table_changes')
      .where({ change_id: change.id })
      .first<{ tables_done: number | string; finished_at: string | null }>('tables_done', 'finished_at');
    assert.equal(Number(progress.tables_done), 10);
    assert.equal(progress.finished_at, null);

    // A message that gets its table meanwhile gets it with the change.
    await store(db, [ref(100)]);
    const late = (await currentHotTable(db, ref(100)))!.name;
    assert.ok(await has(late), 'a table made after the template changed has the change');

    const rest: HotTableChangeProgress[] = [];
    const resumed = await changeEveryHotTable(db, change, (p) => {
      rest.push(p);
    });
    assert.deepEqual(resumed, { changed: 20, alreadyChanged: 1, resumedAfter: 10, finished: true });
    assert.equal(rest[0].done, 11, 'went on after the last table done');
    assert.equal(rest.at(-1)?.done, 31);
    assert.ok((await Promise.all([...tables, late].map(has))).every(Boolean), 'every table changed');
    for (const r of [...first, ref(100)]) assert.equal(await hotRowCount(db, r), 1, `${r.id} keeps its row`);

    const again = await changeEveryHotTable(db, change);
    assert.deepEqual(again, { changed: 0, alreadyChanged: 0, resumedAfter: 0, finished: true });
  });

  it('brings a table made from a definition read before the template changed up to date', async () => {
    const change = addHotColumn('test-stale-column', 'stale_fix', 'INT NULL');
    await changeEveryHotTable(db, change);
    // As createLikeTemplate would have made it had it read the template just before the change.
    await db.raw(`CREATE TABLE interactions_stale LIKE \`${HOT_TABLE_TEMPLATE}\``);
    await db.raw('ALTER TABLE interactions_stale DROP COLUMN stale_fix');
    try {
      assert.equal(await change.applied(db, 'interactions_stale'), false);
      await bringUpToDate(db, 'interactions_stale', [change]);
      assert.equal(await change.applied(db, 'interactions_stale'), true);
    } finally {
      await db.raw('DROP TABLE IF EXISTS interactions_stale');
    }
  });

  it('refuses a column name that is not one', () => {
    assert.throws(() => addHotColumn('x', 'a; DROP TABLE b', 'INT NULL'), /not a column name/);
  });
});
