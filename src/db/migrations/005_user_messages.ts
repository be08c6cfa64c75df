import type { Knex } from 'knex';

/**
 * The profile lists and the users export find a user's messages in `user_messages`, one row per
 * (user, message) that has interaction rows, instead of in a per-user index of `interactions`.
 *
 * `ix_interactions_user` was, after the unique key on event ids (migration 004), the costliest B-tree
 * of the hot table to maintain: a message's entries in it are scattered at random, so every row
 * archived, restored or ingested meant a random descent into it, and for a delete a second one when
 * purge removes the entry. Measured in the database alone (docs/BENCHMARKS.md, "What each index costs
 * a move"), a message's rows cost about a third less to delete and to insert without it.
 * `user_messages` is written once per (user, message) at ingestion and never by a move: rows leave
 * it neither when their message is archived nor when it is restored, and the availability check
 * keeps expired messages out of the lists as before.
 *
 * Generations archived before this migration left the hot table without a pair in `user_messages`
 * (the backfill below reads only hot rows). Their manifests keep `user_messages_kept` false, and a
 * restore of such a generation adds its users' pairs as it puts the rows back.
 *
 * Whatever writes `interactions` other than ingestion (an import) must add the rows' pairs here, as
 * it must add their event ids to the ledger (migration 004).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('user_messages', (t) => {
    t.string('user_id', 64).notNullable();
    t.string('message_kind', 16).notNullable();
    t.string('message_id', 64).notNullable();
    t.primary(['user_id', 'message_kind', 'message_id']);
  });
  // Read in user order through the index about to go, so the new table is filled in key order.
  await knex.raw(
    'INSERT INTO user_messages (user_id, message_kind, message_id) ' +
      'SELECT DISTINCT user_id, message_kind, message_id FROM interactions FORCE INDEX (ix_interactions_user) ORDER BY user_id, message_kind, message_id',
  );
  await knex.schema.alterTable('archive_manifests', (t) => {
    // Existing generations: false. The archiver sets it on every generation it creates from now on.
    t.boolean('user_messages_kept').notNullable().defaultTo(false);
  });
  await knex.schema.alterTable('interactions', (t) => {
    t.dropIndex([], 'ix_interactions_user');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('interactions', (t) => {
    t.index(['user_id'], 'ix_interactions_user');
  });
  await knex.schema.alterTable('archive_manifests', (t) => {
    t.dropColumn('user_messages_kept');
  });
  await knex.schema.dropTableIfExists('user_messages');
}
