/**
 * `user_messages`, where the profile lists and the users export find each user's messages (migration
 * 005): filled from the hot rows by the migration, written by ingestion, left alone by the archive and
 * the restore, except that a restore of a generation archived before the migration adds its users.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { ingestEvents } from '../src/dataplane/ingest/ingest';
import type { InteractionEvent } from '../src/dataplane/ingest/events';
import { migrateToLatest, migrationSource, type Db } from '../src/db/knex';
import { backfillUserMessages } from '../src/db/migrations/005_user_messages';
import type { MessageRef } from '../src/shared/types';
import { archiveMessage } from '../src/storage/archiver';
import { restoreMessage } from '../src/storage/restorer';
import { hotRows, seedInteractions, useThrowawayDatabase } from './support/stack';

const campaign: MessageRef = { kind: 'campaign', id: 'pairs-campaign' };
const canvas: MessageRef = { kind: 'canvas', id: 'pairs-canvas' };

/**
 * The pairs of one message, user ids lower-cased and sorted: as the case-insensitive collation of the
 * migrations before 007 saw them (since 007 user ids are exact, and `exactPairsOf` reads them so).
 */
async function pairsOf(db: Db, ref: MessageRef): Promise<string[]> {
  const users = (await db('user_messages').where({ message_kind: ref.kind, message_id: ref.id }).pluck('user_id')) as string[];
  return users.map((u) => u.toLowerCase()).sort();
}

/** The pairs of one message as stored, sorted. */
async function exactPairsOf(db: Db, ref: MessageRef): Promise<string[]> {
  return ((await db('user_messages').where({ message_kind: ref.kind, message_id: ref.id }).pluck('user_id')) as string[]).sort();
}

/**
 * Back to just after migration `last`, whatever migrations came after it (each one's down runs):
 * these tests are about what 005 and 006 did to the data they found.
 */
async function migrateDownTo(db: Db, last: string): Promise<void> {
  for (;;) {
    const latest = (await db('knex_migrations').orderBy('id', 'desc').first<{ name: string } | undefined>('name'))?.name;
    if (latest === undefined || latest <= last) return;
    await db.migrate.down({ migrationSource });
  }
}

/** The distinct users of a message's rows in the shared table, as it was before migration 006. */
async function sharedTableUsersOf(db: Db, ref: MessageRef): Promise<string[]> {
  const users = (await db('interactions')
    .where({ message_kind: ref.kind, message_id: ref.id })
    .distinct('user_id')
    .pluck('user_id')) as string[];
  return [...new Set(users.map((u) => u.toLowerCase()))].sort();
}

/** The distinct users of a message's hot rows, lower-cased and sorted. */
async function hotUsersOf(db: Db, ref: MessageRef): Promise<string[]> {
  return [...new Set((await hotRows(db, ref)).map((r) => String(r.user_id).toLowerCase()))].sort();
}

async function indexNames(db: Db, table: string): Promise<string[]> {
  const [rows] = (await db.raw('SHOW INDEX FROM ??', [table])) as [{ Key_name: string }[]];
  return [...new Set(rows.map((r) => r.Key_name))];
}

describe('user_messages (migration 005)', () => {
  const database = useThrowawayDatabase([
    'interactions',
    'archive_chunks',
    'archive_manifests',
    'move_fences',
    'user_messages',
    'ingested_events',
  ]);
  let db: Db;
  before(() => {
    db = database.get();
  });

  it('is filled from the hot rows when the migration runs, and replaces ix_interactions_user; then 006 moves each message into its table', async () => {
    // Back to before 006 (a table per message) and 005, and so before 007 (exact ids).
    await migrateDownTo(db, '004_event_ids_in_ledger');
    let shared: { id: string; message_id: string }[] = [];
    try {
      assert.ok((await indexNames(db, 'interactions')).includes('ix_interactions_user'), 'down puts the index back');
      await seedInteractions(db, campaign, 600, { table: 'interactions' });
      await seedInteractions(db, canvas, 300, { table: 'interactions' });
      // The same user in another case: before migration 007 the database compared ids case-insensitively,
      // so the backfill made one pair (007 leaves user data as it finds it).
      const first = await db('interactions')
        .where({ message_kind: canvas.kind, message_id: canvas.id })
        .orderBy('id')
        .first<Record<string, unknown>>();
      await db('interactions').insert({ ...first, id: undefined, event_id: 'case-twin', user_id: 'USER-0' });
      await db('archive_manifests').insert({ message_kind: 'campaign', message_id: 'archived-earlier', generation: 1, status: 'archived' });
      shared = await db('interactions').orderBy('id').select<typeof shared>('id', 'message_id');
    } finally {
      await migrateToLatest(db);
    }
    assert.ok(!(await indexNames(db, 'interactions')).includes('ix_interactions_user'));
    assert.equal(Number((await db('interactions').count<{ n: number }[]>('* as n'))[0].n), 0, '006 leaves the shared table empty');
    for (const ref of [campaign, canvas]) {
      assert.deepEqual(
        (await hotRows(db, ref)).map((r) => String(r.id)),
        shared.filter((r) => r.message_id === ref.id).map((r) => String(r.id)),
        `every row of ${ref.id} in its own table, with its id`,
      );
    }
    assert.deepEqual(await pairsOf(db, campaign), await hotUsersOf(db, campaign));
    assert.deepEqual(await pairsOf(db, canvas), await hotUsersOf(db, canvas));
    assert.equal((await pairsOf(db, canvas)).filter((u) => u === 'user-0').length, 1);
    const earlier = await db('archive_manifests').where({ message_id: 'archived-earlier' }).first<{ user_messages_kept: number }>();
    assert.equal(Number(earlier?.user_messages_kept), 0, 'a generation archived before the migration is marked as such');
  });

  it('backfills range by range, and a run stopped halfway is completed by running the migration again', async () => {
    // Back to before 006: 005 reads the shared table.
    await migrateDownTo(db, '005_user_messages');
    await seedInteractions(db, campaign, 600, { table: 'interactions' });
    await seedInteractions(db, canvas, 300, { table: 'interactions' });
    const first = await db('interactions')
      .where({ message_kind: canvas.kind, message_id: canvas.id })
      .orderBy('id')
      .first<Record<string, unknown>>();
    await db('interactions').insert({ ...first, id: undefined, event_id: 'case-twin', user_id: 'USER-0' });
    // A run stopped in its backfill: the table and the flag are there, some pairs, the index still.
    await db.raw('ALTER TABLE interactions ADD INDEX ix_interactions_user (user_id)');
    const someUsers = (await sharedTableUsersOf(db, campaign)).slice(0, 5);
    await db('user_messages').insert(someUsers.map((user_id) => ({ user_id, message_kind: campaign.kind, message_id: campaign.id })));
    // Ranges of 7 rows: over a hundred statements, each taking every row of the user at its upper bound.
    await backfillUserMessages(db, 7);
    assert.deepEqual(await pairsOf(db, campaign), await sharedTableUsersOf(db, campaign));
    assert.deepEqual(await pairsOf(db, canvas), await sharedTableUsersOf(db, canvas));

    await db('user_messages').where({ message_kind: canvas.kind }).delete();
    await db('knex_migrations').where({ name: '005_user_messages' }).delete();
    await migrateToLatest(db);
    assert.deepEqual(await pairsOf(db, canvas), await hotUsersOf(db, canvas), 'the second run writes the missing pairs');
    assert.deepEqual(await pairsOf(db, campaign), await hotUsersOf(db, campaign));
    assert.ok(!(await indexNames(db, 'interactions')).includes('ix_interactions_user'), 'and drops the index');
  });

  it('gets one pair per user and message from ingestion, however many events; user ids are exact', async () => {
    const event = (n: number, userId: string, ref: MessageRef): InteractionEvent => ({
      eventId: `pair-${n}`,
      type: 'received',
      messageKind: ref.kind,
      messageId: ref.id,
      userId,
      occurredAt: `2026-01-01T00:00:${String(n).padStart(2, '0')}.000Z`,
      channel: 'email',
      ...(ref.kind === 'canvas' ? { stepId: 'step-1' } : {}),
    });
    await ingestEvents(db, [event(1, 'ann', campaign), event(2, 'Ann', campaign), event(3, 'bob', campaign), event(4, 'ann', canvas)]);
    await ingestEvents(db, [event(5, 'ANN', campaign), event(6, 'cy', canvas)]);
    assert.deepEqual(await exactPairsOf(db, campaign), ['ANN', 'Ann', 'ann', 'bob'], 'ann, Ann and ANN are three users');
    assert.deepEqual(await exactPairsOf(db, canvas), ['ann', 'cy']);
  });

  for (const kept of [true, false]) {
    it(
      kept
        ? 'is left alone by the archive and the restore of a generation archived since'
        : 'gets the users back from the restore of a generation archived before the migration',
      async () => {
        await seedInteractions(db, campaign, 2_500);
        const users = await hotUsersOf(db, campaign);
        // What ingestion would have written; the generation archived before the migration had none.
        if (kept)
          await db('user_messages').insert(users.map((user_id) => ({ user_id, message_kind: campaign.kind, message_id: campaign.id })));
        await archiveMessage(db, campaign, 1, { chunkRows: 1_000 });
        const manifest = db('archive_manifests').where({ message_kind: campaign.kind, message_id: campaign.id, generation: 1 });
        assert.equal(
          Number((await manifest.clone().first<{ user_messages_kept: number }>())?.user_messages_kept),
          1,
          'the archive marks its generations',
        );
        if (!kept) await manifest.clone().update({ user_messages_kept: false });
        assert.deepEqual(await pairsOf(db, campaign), kept ? users : [], 'the archive removes no pair');
        await restoreMessage(db, campaign, 1, { insertBatch: 300 });
        assert.deepEqual(await pairsOf(db, campaign), users);
      },
    );
  }
});
