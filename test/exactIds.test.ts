/**
 * Ids are exact, byte for byte, everywhere (issue 24, "One spelling"): message ids, user ids, event
 * ids, audience and segment ids and component ids that differ only in letter case name different
 * things, in MySQL as in Temporal's workflow IDs. Tags and e-mail addresses stay case-insensitive.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Knex } from 'knex';
import { messageAnalytics } from '../src/dataplane/analytics';
import { getAudience, putAudience } from '../src/dataplane/audiences';
import type { InteractionEvent } from '../src/dataplane/ingest/events';
import { ingestEvents } from '../src/dataplane/ingest/ingest';
import { InvalidBatchError, validateBatch } from '../src/dataplane/ingest/validateBatch';
import type { DataPlaneLifecycle } from '../src/dataplane/lifecyclePort';
import { createMessage } from '../src/dataplane/messageService';
import { loadMessage, writeMessage } from '../src/dataplane/messages';
import type { Component } from '../src/dataplane/model';
import { exportUsers, userProfile } from '../src/dataplane/users';
import { idColumn } from '../src/db/ids';
import { createDb, ensureDatabase, migrateToLatest, migrationSource, type Db } from '../src/db/knex';
import * as exactIds from '../src/db/migrations/007_exact_ids';
import type { MessageRef } from '../src/shared/types';
import { archiveMessage } from '../src/storage/archiver';
import { CHUNK_CODEC, encodeChunk, manifestChecksum, type InteractionRow } from '../src/storage/chunkCodec';
import { currentHotTables, HOT_TABLE_TEMPLATE, hotTableName } from '../src/storage/hotTables';
import { restoreMessage } from '../src/storage/restorer';
import { hotRows, uniqueName, useThrowawayDatabase } from './support/stack';

/**
 * The data plane's calls to the actors, answered without Temporal: these tests are about MySQL. No
 * message here is stopped or resumed, so only the two signals are answered (and the cast keeps this
 * stand-in independent of what stop and resume return).
 */
const unexpected = (): Promise<never> => Promise.reject(new Error('no message is stopped or resumed here'));
const lifecycle = {
  stop: unexpected,
  resume: unexpected,
  referencesChanged: () => Promise.resolve(),
  updateDetails: () => Promise.resolve(),
} as unknown as DataPlaneLifecycle;

let seq = 0;
function event(ref: MessageRef, userId: string, over: Partial<InteractionEvent> = {}): InteractionEvent {
  seq += 1;
  return {
    eventId: `exact-${seq}`,
    type: 'received',
    messageKind: ref.kind,
    messageId: ref.id,
    userId,
    occurredAt: new Date(Date.UTC(2026, 0, 1) + seq * 60_000).toISOString(),
    channel: 'email',
    ...over,
  };
}

async function define(db: Db, ref: MessageRef, name: string, variants: Component[] = []): Promise<void> {
  await db.transaction((trx) => writeMessage(trx, { ...ref, name, tags: [], status: 'active', variants, steps: [], variations: [] }));
}

/** Validated as POST /v1/interactions validates, then stored. */
async function post(db: Db, events: InteractionEvent[]): Promise<{ stored: number; duplicates: number }> {
  return ingestEvents(db, await validateBatch(db, events));
}

describe('ids are exact', () => {
  const database = useThrowawayDatabase([
    'interactions',
    'archive_chunks',
    'archive_manifests',
    'ingested_events',
    'users',
    'user_messages',
    'user_message_receipts',
    'user_clicked_aliases',
    'message_analytics',
    'message_availability',
    'audiences',
  ]);
  let db: Db;
  before(() => {
    db = database.get();
  });

  it('stores an event for a message id that differs only in case as that other message, and archives and restores each alone', async () => {
    const upper: MessageRef = { kind: 'campaign', id: 'CS1' };
    const lower: MessageRef = { kind: 'campaign', id: 'cs1' };
    await define(db, upper, 'Upper');
    await assert.rejects(validateBatch(db, [event(lower, 'u1')]), InvalidBatchError, 'cs1 is not defined: its events are refused');

    await define(db, lower, 'Lower');
    assert.equal((await loadMessage(db, upper))?.name, 'Upper', 'defining cs1 leaves CS1 alone');
    assert.equal((await loadMessage(db, lower))?.name, 'Lower');
    assert.equal(
      (await post(db, [event(upper, 'u1'), event(upper, 'u2'), event(lower, 'u1'), event(upper, 'u3'), event(lower, 'u2')])).stored,
      5,
    );

    const tables = await currentHotTables(db, [upper, lower]);
    assert.ok(tables.get(upper) && tables.get(lower), 'each has a table');
    assert.notEqual(tables.get(upper)?.entryNo, tables.get(lower)?.entryNo, 'never the same entry');
    const upperRows = await hotRows(db, upper);
    assert.deepEqual(
      upperRows.map((r) => r.message_id),
      ['CS1', 'CS1', 'CS1'],
    );
    assert.deepEqual(
      (await hotRows(db, lower)).map((r) => r.message_id),
      ['cs1', 'cs1'],
    );

    const manifest = await archiveMessage(db, upper, 1, { chunkRows: 2 });
    assert.equal(manifest.rowCount, 3);
    assert.deepEqual(await hotRows(db, upper), []);
    assert.equal((await hotRows(db, lower)).length, 2, "the archive leaves cs1's rows alone");
    assert.equal((await restoreMessage(db, upper, 1)).rowCount, 3);
    assert.deepEqual(await hotRows(db, upper), upperRows, 'exactly its own rows come back');
    assert.equal((await hotRows(db, lower)).length, 2);
  });

  it('keeps users whose ids differ only in case apart: summaries, pairs, receipts and profiles', async () => {
    const ref: MessageRef = { kind: 'campaign', id: 'users-case' };
    await define(db, ref, 'Users');
    const bob = event(ref, 'Bob', { occurredAt: '2026-02-01T10:00:00.000Z' });
    const lowerBob = event(ref, 'bob', { occurredAt: '2026-02-03T10:00:00.000Z' });
    await post(db, [bob, lowerBob, event(ref, 'bob', { type: 'clicked', alias: 'cta', occurredAt: '2026-02-04T10:00:00.000Z' })]);

    assert.deepEqual((await db('users').orderBy('first_seen_at').pluck('id')) as string[], ['Bob', 'bob']);
    assert.deepEqual(((await db('user_messages').where({ message_id: ref.id }).pluck('user_id')) as string[]).sort(), ['Bob', 'bob']);
    assert.deepEqual(((await db('user_message_receipts').where({ message_id: ref.id }).pluck('user_id')) as string[]).sort(), [
      'Bob',
      'bob',
    ]);
    assert.deepEqual((await db('user_clicked_aliases').pluck('user_id')) as string[], ['bob']);

    const upper = await userProfile(db, 'Bob');
    const lower = await userProfile(db, 'bob');
    assert.equal(upper?.id, 'Bob');
    assert.equal(upper?.firstSeenAt, '2026-02-01T10:00:00.000Z');
    assert.equal(upper?.summary.lastEngagedAt, null, 'Bob never clicked');
    assert.equal(upper?.campaignsReceived[0]?.lastReceived, '2026-02-01T10:00:00.000Z');
    assert.equal(lower?.id, 'bob');
    assert.equal(lower?.firstSeenAt, '2026-02-03T10:00:00.000Z');
    assert.equal(lower?.summary.lastEngagedAt, '2026-02-04T10:00:00.000Z');
    assert.equal(lower?.campaignsReceived[0]?.lastReceived, '2026-02-03T10:00:00.000Z');
    assert.equal(await userProfile(db, 'BOB'), null, 'BOB is no one');
    assert.equal((await messageAnalytics(db, ref)).uniqueRecipients, 2);

    const exported = await exportUsers(db, ['Bob', 'bob', 'BOB'], ['external_id', 'first_seen']);
    assert.deepEqual(exported.users, [
      { external_id: 'Bob', first_seen: '2026-02-01T10:00:00.000Z' },
      { external_id: 'bob', first_seen: '2026-02-03T10:00:00.000Z' },
    ]);
    assert.deepEqual(exported.invalid_user_ids, ['BOB']);
  });

  it('stores event ids that differ only in case as two events, and the same id twice once', async () => {
    const ref: MessageRef = { kind: 'campaign', id: 'events-case' };
    await define(db, ref, 'Events');
    const e1 = event(ref, 'u1', { eventId: 'E1' });
    const lowerE1 = event(ref, 'u2', { eventId: 'e1' });
    assert.deepEqual(await post(db, [e1]), { received: 1, stored: 1, duplicates: 0, erased: 0 });
    assert.deepEqual(await post(db, [lowerE1, e1]), { received: 2, stored: 1, duplicates: 1, erased: 0 });
    assert.deepEqual(
      await post(db, [event(ref, 'u3', { eventId: 'x1' }), event(ref, 'u3', { eventId: 'X1' })]),
      { received: 2, stored: 2, duplicates: 0, erased: 0 },
      'one batch may hold both',
    );
    await assert.rejects(
      validateBatch(db, [event(ref, 'u3', { eventId: 'y1' }), event(ref, 'u3', { eventId: 'y1' })]),
      InvalidBatchError,
      'the same id twice in a batch is still refused',
    );
    assert.deepEqual(((await db('ingested_events').pluck('event_id')) as string[]).sort(), ['E1', 'X1', 'e1', 'x1']);
    assert.deepEqual((await hotRows(db, ref)).map((r) => r.event_id).sort(), ['E1', 'X1', 'e1', 'x1']);
  });

  it('keeps audiences and segments whose ids differ only in case apart', async () => {
    const target: MessageRef = { kind: 'campaign', id: 'aud-target' };
    await define(db, target, 'Target');
    const filter = { type: 'received_message_from_campaign', messageId: target.id };
    await putAudience(db, lifecycle, 'Seg', { type: 'segment', name: 'upper segment', active: true, filters: [filter] });
    await putAudience(db, lifecycle, 'seg', { type: 'segment', name: 'lower segment', active: true, filters: [] });
    assert.equal((await getAudience(db, 'Seg')).name, 'upper segment');
    assert.deepEqual((await getAudience(db, 'Seg')).filters.length, 1, 'saving seg left Seg as it was');
    assert.equal((await getAudience(db, 'seg')).name, 'lower segment');
    await assert.rejects(getAudience(db, 'SEG'), /no audience "SEG"/);

    // Seg's filter targets data that has expired; seg has no filter.
    await db('message_availability').insert({
      kind: target.kind,
      message_id: target.id,
      state: 'expired',
      available: false,
      generation: 1,
      revision: 1,
    });
    const campaign = (id: string, segmentIds: string[]) =>
      putAudience(db, lifecycle, id, { type: 'campaign', name: id, active: true, filters: [], segmentIds });
    assert.deepEqual((await campaign('uses-lower', ['seg'])).audience.segmentIds, ['seg']);
    await assert.rejects(campaign('uses-upper', ['Seg']), /include expired filters/);
    await assert.rejects(campaign('uses-neither', ['SEG']), /"SEG" is not a segment/);
    await putAudience(db, lifecycle, 'Camp', { type: 'campaign', name: 'upper campaign', active: false, filters: [] });
    await putAudience(db, lifecycle, 'camp', { type: 'campaign', name: 'lower campaign', active: false, filters: [] });
    assert.deepEqual(((await db('audiences').whereIn('id', ['Camp', 'camp']).pluck('name')) as string[]).sort(), [
      'lower campaign',
      'upper campaign',
    ]);
  });

  it('keeps variant ids that differ only in case apart', async () => {
    const ref: MessageRef = { kind: 'campaign', id: 'components-case' };
    await createMessage(db, lifecycle, ref, {
      name: 'Components',
      variants: [
        { id: 'V1', name: 'upper variant' },
        { id: 'v1', name: 'lower variant' },
      ],
    });
    await post(db, [event(ref, 'u1', { variantId: 'v1' }), event(ref, 'u2', { variantId: 'v1' }), event(ref, 'u3', { variantId: 'V1' })]);
    await assert.rejects(validateBatch(db, [event(ref, 'u4', { variantId: 'V2' })]), InvalidBatchError);
    const analytics = await messageAnalytics(db, ref);
    assert.deepEqual(
      analytics.variants?.map((v) => [v.id, v.name, v.counts.received]),
      [
        ['V1', 'upper variant', 1],
        ['v1', 'lower variant', 2],
      ],
    );
  });
});

/** The id columns the rule covers (issue 24): messages', users', events', audiences', segments' and components'. */
const EXACT: Readonly<Record<string, readonly string[]>> = {
  messages: ['id'],
  message_tags: ['message_id'],
  message_availability: ['message_id'],
  message_components: ['message_id', 'component_id'],
  legacy_purged_messages: ['message_id'],
  archive_manifests: ['message_id'],
  archive_chunks: ['message_id'],
  hot_tables: ['message_id'],
  ingested_events: ['event_id'],
  users: ['id'],
  user_message_receipts: ['message_id', 'step_id', 'user_id'],
  user_clicked_aliases: ['user_id'],
  user_messages: ['user_id', 'message_id'],
  message_analytics: ['message_id', 'variant_id', 'step_id', 'variation_id'],
  audiences: ['id', 'message_id'],
  audience_filters: ['audience_id', 'target_id'],
  audience_segments: ['audience_id', 'segment_id'],
  bulk_restore_items: ['message_id'],
  interactions: ['event_id', 'message_id', 'user_id', 'variant_id', 'step_id', 'variation_id'],
};
const exactColumnsOf = (table: string) => EXACT[/^interactions_\d+$/.test(table) ? 'interactions' : table] ?? [];

interface ColumnShape {
  type: string;
  nullable: string;
  dflt: string | null;
  coll: string | null;
}

/** Every text column of the database, `table.column` to its definition. */
async function columnShapes(db: Db): Promise<Map<string, ColumnShape>> {
  const [rows] = (await db.raw(
    'SELECT TABLE_NAME AS t, COLUMN_NAME AS c, COLUMN_TYPE AS type, IS_NULLABLE AS nullable, COLUMN_DEFAULT AS dflt, COLLATION_NAME AS coll ' +
      'FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND COLLATION_NAME IS NOT NULL',
  )) as [{ t: string; c: string; type: string; nullable: string; dflt: string | null; coll: string | null }[]];
  return new Map(
    rows.map((r) => [
      `${r.t}.${r.c}`,
      { type: String(r.type), nullable: String(r.nullable), dflt: r.dflt === null ? null : String(r.dflt), coll: r.coll },
    ]),
  );
}

async function foreignKeyRules(db: Db): Promise<string[]> {
  const [rows] = (await db.raw(
    "SELECT TABLE_NAME AS t, DELETE_RULE AS d FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() AND REFERENCED_TABLE_NAME = 'audiences'",
  )) as [{ t: string; d: string }[]];
  return rows.map((r) => `${r.t} ${r.d}`).sort();
}

function hotRow(ref: MessageRef, messageId: string, n: number, userId = `user-${n}`) {
  return {
    event_id: `${ref.id}-${n}`,
    message_kind: ref.kind,
    message_id: messageId,
    user_id: userId,
    event_type: 'received',
    variant_id: null,
    step_id: null,
    variation_id: null,
    alias: null,
    channel: 'email',
    occurred_at: `2026-01-01 00:00:${String(n).padStart(2, '0')}.000`,
  };
}

/**
 * A generation as the archive stored it before migration 007, written directly (the archive of today
 * needs tables of later migrations): `rows` of the message, ids from 1, in chunks of `chunkRows`.
 */
async function archivedBefore007(
  db: Db,
  key: { message_kind: string; message_id: string },
  messageIds: readonly string[],
  chunkRows: number,
  /** Ids were unique across every message then as now (one table's AUTO_INCREMENT, or a block per table). */
  firstId: number,
): Promise<void> {
  const rows: InteractionRow[] = messageIds.map((messageId, i) => {
    const r = hotRow({ kind: 'campaign', id: key.message_id }, messageId, i + 1);
    return { ...r, id: String(firstId + i) };
  });
  const checksums: string[] = [];
  for (let i = 0; i < rows.length; i += chunkRows) {
    const chunk = await encodeChunk(rows.slice(i, i + chunkRows));
    checksums.push(chunk.checksum);
    await db('archive_chunks').insert({
      ...key,
      generation: 1,
      seq: checksums.length,
      first_id: chunk.firstId,
      last_id: chunk.lastId,
      row_count: chunk.rowCount,
      checksum: chunk.checksum,
      codec: CHUNK_CODEC,
      payload: chunk.payload,
      verified_at: db.raw('CURRENT_TIMESTAMP(3)'),
    });
  }
  await db('archive_manifests').insert({
    ...key,
    generation: 1,
    status: 'archived',
    row_count: rows.length,
    chunk_count: checksums.length,
    checksum: manifestChecksum(checksums),
    archived_at: db.raw('CURRENT_TIMESTAMP(3)'),
    user_messages_kept: true,
  });
}

/**
 * A message's table as the code of that time made it (its registry row, then a table like the template):
 * the service's own ensureHotTable reads columns later migrations add.
 */
async function tableBefore007(db: Db, ref: MessageRef): Promise<string> {
  const entry = { message_kind: ref.kind, message_id: ref.id, role: 'current' };
  await db('hot_tables').insert(entry);
  const row = await db('hot_tables').where(entry).first<{ table_no: string | number }>('table_no');
  const name = hotTableName(row.table_no);
  await db.raw('CREATE TABLE ?? LIKE ??', [name, HOT_TABLE_TEMPLATE]);
  return name;
}

describe('migration 007 (exact ids)', () => {
  const base = process.env.TEST_MYSQL_URL || process.env.MYSQL_URL || 'mysql://root@127.0.0.1:3306/interaction_data';
  const name = uniqueName('idtest');
  const url = (() => {
    const u = new URL(base);
    u.pathname = `/${name}`;
    return u.toString();
  })();
  const before007: Knex.MigrationSource<string> = {
    getMigrations: async (extensions) => (await migrationSource.getMigrations(extensions)).filter((m) => m < '007'),
    getMigrationName: (m) => m,
    getMigration: (m) => migrationSource.getMigration(m),
  };
  let db: Db;
  before(async () => {
    await ensureDatabase(url);
    db = createDb(url);
    await db.migrate.latest({ migrationSource: before007 });
  });
  after(async () => {
    await db?.raw('DROP DATABASE IF EXISTS ??', [name]).catch(() => undefined);
    await db?.destroy();
  });

  const cs1: MessageRef = { kind: 'campaign', id: 'CS1' };
  const noDef: MessageRef = { kind: 'campaign', id: 'NoDef' };
  const arc1: MessageRef = { kind: 'campaign', id: 'ARC1' };
  const arc2: MessageRef = { kind: 'campaign', id: 'ARC2' };

  it('makes every id column exact, gives every row its message’s spelling, and restores generations archived before it', async () => {
    // What the case-insensitive collation let in: one message under several spellings.
    for (const ref of [cs1, arc1, arc2]) await db('messages').insert({ kind: ref.kind, id: ref.id, name: ref.id });
    await db('message_tags').insert({ kind: 'campaign', message_id: 'cs1', tag: 'Tag' });
    await db('message_components').insert({
      kind: 'campaign',
      message_id: 'cS1',
      component_type: 'variant',
      component_id: 'V1',
      name: 'Variant',
      position: 0,
    });
    await db('message_availability').insert([
      { kind: 'campaign', message_id: 'cs1', state: 'active', available: true, revision: 1 },
      { kind: 'campaign', message_id: 'NODEF', state: 'active', available: true, revision: 1 },
    ]);
    const cs1Table = await tableBefore007(db, { kind: 'campaign', id: 'cs1' });
    await db(cs1Table).insert([hotRow(cs1, 'CS1', 1, 'Bob'), hotRow(cs1, 'cs1', 2, 'bob'), hotRow(cs1, 'Cs1', 3)]);
    const noDefTable = await tableBefore007(db, noDef);
    await db(noDefTable).insert([hotRow(noDef, 'nodef', 1), hotRow(noDef, 'NoDef', 2)]);
    await db('user_messages').insert({ user_id: 'Bob', message_kind: 'campaign', message_id: 'cs1' });
    await db('user_message_receipts').insert({
      message_kind: 'campaign',
      message_id: 'cs1',
      step_id: '',
      user_id: 'Bob',
      first_received_at: '2026-01-01 00:00:01',
      last_received_at: '2026-01-01 00:00:01',
    });
    await db('message_analytics').insert({
      message_kind: 'campaign',
      message_id: 'cs1',
      day: '2026-01-01',
      event_type: 'received',
      channel: 'email',
      count: 3,
    });
    await db('audiences').insert([
      { id: 'Aud', type: 'campaign', name: 'Aud', active: false, message_id: 'cs1' },
      { id: 'Seg', type: 'segment', name: 'Seg', active: true },
    ]);
    await db('audience_filters').insert({
      audience_id: 'Aud',
      filter_type: 'received_message_from_campaign',
      target_kind: 'campaign',
      target_id: 'cs1',
    });
    await db('audience_segments').insert({ audience_id: 'Aud', segment_id: 'Seg' });
    await db('bulk_restore_items').insert({ execution_key: 'br-1/run', kind: 'campaign', message_id: 'cs1', outcome: 'pending' });
    // Archived generations holding rows spelled otherwise (the archive copied the message's table as it
    // was); ARC2's archive was even asked for as arc2.
    await archivedBefore007(db, { message_kind: 'campaign', message_id: 'ARC1' }, ['ARC1', 'arc1', 'ARC1', 'Arc1', 'ARC1'], 2, 1);
    await archivedBefore007(db, { message_kind: 'campaign', message_id: 'arc2' }, ['arc2', 'ARC2'], 3, 101);
    const shapesBefore = await columnShapes(db);

    const [, ran] = (await db.migrate.up({ migrationSource })) as [number, string[]];
    assert.deepEqual(ran, ['007_exact_ids']);

    const shapes = await columnShapes(db);
    assert.ok([...shapes.keys()].includes(`${cs1Table}.message_id`), 'the hot tables are covered');
    for (const [column, shape] of shapes) {
      const [table, col] = column.split('.');
      const was = shapesBefore.get(column) as ColumnShape;
      assert.deepEqual(
        [shape.type, shape.nullable, shape.dflt],
        [was.type, was.nullable, was.dflt],
        `${column} keeps its type, nullability and default`,
      );
      assert.equal(shape.coll, exactColumnsOf(table).includes(col) ? 'utf8mb4_bin' : was.coll, column);
    }
    for (const [table, cols] of Object.entries(EXACT)) for (const c of cols) assert.ok(shapes.has(`${table}.${c}`), `${table}.${c} exists`);
    assert.deepEqual(
      await foreignKeyRules(db),
      ['audience_filters CASCADE', 'audience_segments CASCADE'],
      'the foreign keys are back as they were',
    );

    // Read by the service's code from here on, which knows the columns later migrations add.
    await migrateToLatest(db);
    // One message stays one message, in its definition's spelling (else its registry row's).
    const tables = await currentHotTables(db, [cs1, { kind: 'campaign', id: 'cs1' }, noDef]);
    assert.equal(tables.get(cs1)?.name, cs1Table);
    assert.equal(tables.size, 2, 'cs1 is no longer a name of CS1');
    assert.deepEqual(
      (await hotRows(db, cs1)).map((r) => [r.message_id, r.user_id]),
      [
        ['CS1', 'Bob'],
        ['CS1', 'bob'],
        ['CS1', 'user-3'],
      ],
      'user ids are left as they are',
    );
    assert.deepEqual(
      (await hotRows(db, noDef)).map((r) => r.message_id),
      ['NoDef', 'NoDef'],
    );
    const ids = async (table: string, column = 'message_id') => ((await db(table).pluck(column)) as string[]).sort();
    for (const table of [
      'message_tags',
      'message_components',
      'user_messages',
      'user_message_receipts',
      'message_analytics',
      'audiences',
      'bulk_restore_items',
    ]) {
      assert.deepEqual(
        (await ids(table)).filter((v) => v !== null),
        ['CS1'],
        table,
      );
    }
    assert.deepEqual(await ids('audience_filters', 'target_id'), ['CS1']);
    assert.deepEqual(await ids('message_availability'), ['CS1', 'NoDef']);
    assert.deepEqual(await ids('archive_manifests'), ['ARC1', 'ARC2']);
    assert.deepEqual([...new Set(await ids('archive_chunks'))], ['ARC1', 'ARC2']);

    // Chunks keep the bytes their checksums cover; the restore (after the migrations that follow, as a
    // deploy runs them all) puts the rows back in the message's spelling.
    assert.equal((await restoreMessage(db, arc1, 1)).rowCount, 5);
    assert.deepEqual(
      (await hotRows(db, arc1)).map((r) => r.message_id),
      ['ARC1', 'ARC1', 'ARC1', 'ARC1', 'ARC1'],
    );
    assert.equal(
      (await restoreMessage(db, arc2, 1, { insertReturning: false })).rowCount,
      2,
      'also where rows are checked by reading them again (MySQL)',
    );
    assert.deepEqual(
      (await hotRows(db, arc2)).map((r) => r.message_id),
      ['ARC2', 'ARC2'],
    );

    await db('audiences').where({ id: 'Aud' }).delete();
    assert.equal((await ids('audience_filters', 'target_id')).length, 0, 'deleting an audience still deletes its filters');
  });

  it('is finished by running it again after a partial run, and undone by down', async () => {
    const exact = await columnShapes(db);
    await exactIds.up(db);
    assert.deepEqual(await columnShapes(db), exact, 'a second run changes nothing');

    await exactIds.down(db);
    for (const [column, shape] of await columnShapes(db)) {
      const [table, col] = column.split('.');
      if (exactColumnsOf(table).includes(col)) assert.notEqual(shape.coll, 'utf8mb4_bin', `${column} is case-insensitive again`);
    }
    assert.deepEqual(await foreignKeyRules(db), ['audience_filters CASCADE', 'audience_segments CASCADE']);

    // Stopped halfway: some tables converted, a foreign key dropped and not yet added back.
    await db.raw('ALTER TABLE users MODIFY id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL');
    await db.raw('ALTER TABLE audience_segments DROP FOREIGN KEY audience_segments_audience_id_foreign');
    await exactIds.up(db);
    assert.deepEqual(await columnShapes(db), exact);
    assert.deepEqual(await foreignKeyRules(db), ['audience_filters CASCADE', 'audience_segments CASCADE']);
  });

  it('gives tables made later exact id columns through idColumn', async () => {
    await db.schema.createTable('later_ids', (t) => {
      idColumn(t, 'message_id').notNullable();
      idColumn(t, 'user_id', 100).nullable();
    });
    const shapes = await columnShapes(db);
    assert.deepEqual(shapes.get('later_ids.message_id'), { type: 'varchar(64)', nullable: 'NO', dflt: null, coll: 'utf8mb4_bin' });
    assert.equal(shapes.get('later_ids.user_id')?.coll, 'utf8mb4_bin');
    await db('later_ids').insert([{ message_id: 'CS1' }, { message_id: 'cs1' }]);
    assert.equal(Number((await db('later_ids').where({ message_id: 'cs1' }).count<{ n: number }[]>('* as n'))[0].n), 1);
  });
});
