/**
 * Ids are exact, byte for byte, everywhere (issue 24, "One spelling"): message ids, user ids, event
 * ids, audience and segment ids and component ids that differ only in letter case name different
 * things, in MySQL as in Temporal's workflow IDs. Tags and e-mail addresses stay case-insensitive.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
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
import type { Db } from '../src/db/knex';
import type { MessageRef } from '../src/shared/types';
import { archiveMessage } from '../src/storage/archiver';
import { currentHotTables } from '../src/storage/hotTables';
import { restoreMessage } from '../src/storage/restorer';
import { hotRows, useThrowawayDatabase } from './support/stack';

/** The data plane's calls to the actors, answered without Temporal: these tests are about MySQL. */
const lifecycle: DataPlaneLifecycle = {
  stop: async () => undefined,
  resume: async () => undefined,
  referencesChanged: async () => undefined,
  updateDetails: async () => undefined,
};

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
    assert.equal((await post(db, [event(upper, 'u1'), event(upper, 'u2'), event(lower, 'u1'), event(upper, 'u3'), event(lower, 'u2')])).stored, 5);

    const tables = await currentHotTables(db, [upper, lower]);
    assert.ok(tables.get(upper) && tables.get(lower), 'each has a table');
    assert.notEqual(tables.get(upper)?.name, tables.get(lower)?.name, 'never the same table');
    const upperRows = await hotRows(db, upper);
    assert.deepEqual(upperRows.map((r) => r.message_id), ['CS1', 'CS1', 'CS1']);
    assert.deepEqual((await hotRows(db, lower)).map((r) => r.message_id), ['cs1', 'cs1']);

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

    assert.deepEqual(((await db('users').orderBy('first_seen_at').pluck('id')) as string[]), ['Bob', 'bob']);
    assert.deepEqual(((await db('user_messages').where({ message_id: ref.id }).pluck('user_id')) as string[]).sort(), ['Bob', 'bob']);
    assert.deepEqual(((await db('user_message_receipts').where({ message_id: ref.id }).pluck('user_id')) as string[]).sort(), ['Bob', 'bob']);
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
    assert.deepEqual(await post(db, [e1]), { received: 1, stored: 1, duplicates: 0 });
    assert.deepEqual(await post(db, [lowerE1, e1]), { received: 2, stored: 1, duplicates: 1 });
    assert.deepEqual(await post(db, [event(ref, 'u3', { eventId: 'x1' }), event(ref, 'u3', { eventId: 'X1' })]), { received: 2, stored: 2, duplicates: 0 }, 'one batch may hold both');
    await assert.rejects(validateBatch(db, [event(ref, 'u3', { eventId: 'y1' }), event(ref, 'u3', { eventId: 'y1' })]), InvalidBatchError, 'the same id twice in a batch is still refused');
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
    await db('message_availability').insert({ kind: target.kind, message_id: target.id, state: 'expired', available: false, generation: 1, revision: 1 });
    const campaign = (id: string, segmentIds: string[]) => putAudience(db, lifecycle, id, { type: 'campaign', name: id, active: true, filters: [], segmentIds });
    assert.deepEqual((await campaign('uses-lower', ['seg'])).audience.segmentIds, ['seg']);
    await assert.rejects(campaign('uses-upper', ['Seg']), /include expired filters/);
    await assert.rejects(campaign('uses-neither', ['SEG']), /"SEG" is not a segment/);
    await putAudience(db, lifecycle, 'Camp', { type: 'campaign', name: 'upper campaign', active: false, filters: [] });
    await putAudience(db, lifecycle, 'camp', { type: 'campaign', name: 'lower campaign', active: false, filters: [] });
    assert.deepEqual(((await db('audiences').whereIn('id', ['Camp', 'camp']).pluck('name')) as string[]).sort(), ['lower campaign', 'upper campaign']);
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
