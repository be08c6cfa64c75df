import type { Knex } from 'knex';

/**
 * Each step commits on its own (MySQL commits at every DDL statement anyway), and each is skipped when
 * a previous run got past it: a run stopped halfway is run again with `npm run migrate`.
 */
export const config = { transaction: false };

/** Hot rows read per backfill statement. */
const BACKFILL_ROWS = 50_000;

/**
 * The profile lists and the users export find a user's messages in `user_messages`, one row per
 * (user, message) that has interaction rows, instead of in a per-user index of `interactions`.
 *
 * `ix_interactions_user` was, after the unique key on event ids (migration 004), the costliest B-tree
 * of the hot table to maintain: a message's entries in it are scattered at random, so every row
 * archived, restored or ingested meant a random descent into it, and for a delete a second one when
 * purge removes the entry. Measured in the database alone (docs/BENCHMARKS.md, `bench:clustering`), a
 * message's rows cost markedly less to delete and to insert without it.
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
  if (!(await knex.schema.hasTable('user_messages'))) {
    await knex.schema.createTable('user_messages', (t) => {
      t.string('user_id', 64).notNullable();
      t.string('message_kind', 16).notNullable();
      t.string('message_id', 64).notNullable();
      t.primary(['user_id', 'message_kind', 'message_id']);
    });
  }
  if (!(await knex.schema.hasColumn('archive_manifests', 'user_messages_kept'))) {
    await knex.schema.alterTable('archive_manifests', (t) => {
      // Existing generations: false. The archiver sets it on every generation it creates from now on.
      t.boolean('user_messages_kept').notNullable().defaultTo(false);
    });
  }
  if (await hasUserIndex(knex)) {
    await backfillUserMessages(knex, BACKFILL_ROWS);
    await knex.schema.alterTable('interactions', (t) => {
      t.dropIndex([], 'ix_interactions_user');
    });
  }
}

async function hasUserIndex(knex: Knex): Promise<boolean> {
  const [rows] = (await knex.raw("SHOW INDEX FROM interactions WHERE Key_name = 'ix_interactions_user'")) as [unknown[]];
  return rows.length > 0;
}

/**
 * Every (user, message) of the hot rows into `user_messages`, read in user order through the index
 * about to go, so the new table fills in key order: one statement per range of about `batchRows` rows,
 * each committed alone, so that no statement holds a long transaction on a large table. A pair already
 * there (from a run stopped halfway) is left alone. The ranges' bounds are read from the index and
 * compared by the database, in the columns' own collation.
 */
export async function backfillUserMessages(knex: Knex, batchRows: number): Promise<void> {
  let after: string | null = null;
  for (;;) {
    const [bounds] = (await knex.raw(
      `SELECT user_id FROM interactions FORCE INDEX (ix_interactions_user) ${after === null ? '' : 'WHERE user_id > ?'} ORDER BY user_id LIMIT 1 OFFSET ?`,
      after === null ? [batchRows - 1] : [after, batchRows - 1],
    )) as [{ user_id: string }[]];
    const upTo = bounds[0]?.user_id ?? null;
    const range = [after === null ? null : 'user_id > ?', upTo === null ? null : 'user_id <= ?'].filter((c) => c !== null);
    await knex.raw(
      'INSERT INTO user_messages (user_id, message_kind, message_id) ' +
        'SELECT DISTINCT user_id, message_kind, message_id FROM interactions FORCE INDEX (ix_interactions_user) ' +
        `${range.length ? `WHERE ${range.join(' AND ')} ` : ''}ORDER BY user_id, message_kind, message_id ` +
        // Qualified: in INSERT … SELECT the bare name would be ambiguous on MySQL.
        'ON DUPLICATE KEY UPDATE user_messages.user_id = user_messages.user_id',
      [after, upTo].filter((v) => v !== null),
    );
    if (upTo === null) return;
    after = upTo;
  }
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
