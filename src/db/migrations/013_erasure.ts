import type { Knex } from 'knex';

/**
 * A user's erasure (src/privacy/): the request and its progress per message, the record that keeps an
 * erased user's old events from coming back, and the objects a chunk rewrite left behind.
 *
 * `erased_users` holds a SHA-256 of the user id, not the id: it is what ingestion checks every batch
 * against, and it must outlive the erasure without naming the person. `erasure_requests.user_id` is
 * cleared once the request is done, for the same reason.
 */
export async function up(knex: Knex): Promise<void> {
  if (!(await knex.schema.hasTable('erasure_requests'))) {
    await knex.schema.createTable('erasure_requests', (t) => {
      t.string('request_id', 128).notNullable().primary();
      t.string('user_id', 64).notNullable();
      t.specificType('user_hash', 'BINARY(32)').notNullable();
      t.string('requested_by', 255).notNullable().defaultTo('');
      t.datetime('requested_at', { precision: 3 }).notNullable();
      // Events of the user that occurred up to this instant are erased and refused from then on.
      t.datetime('erased_through', { precision: 3 }).notNullable();
      t.string('status', 16).notNullable();
      t.integer('messages_total').unsigned().notNullable().defaultTo(0);
      t.datetime('completed_at', { precision: 3 }).nullable();
      t.text('error').nullable();
      t.index(['user_hash', 'status'], 'ix_erasure_requests_user');
    });
  }
  if (!(await knex.schema.hasTable('erasure_messages'))) {
    await knex.schema.createTable('erasure_messages', (t) => {
      t.string('request_id', 128).notNullable();
      t.string('message_kind', 16).notNullable();
      t.string('message_id', 64).notNullable();
      t.string('status', 16).notNullable().defaultTo('pending');
      t.bigInteger('hot_rows').unsigned().notNullable().defaultTo(0);
      t.bigInteger('archived_rows').unsigned().notNullable().defaultTo(0);
      t.integer('chunks_read').unsigned().notNullable().defaultTo(0);
      t.integer('chunks_rewritten').unsigned().notNullable().defaultTo(0);
      t.bigInteger('bytes_rewritten').unsigned().notNullable().defaultTo(0);
      t.text('error').nullable();
      t.datetime('done_at', { precision: 3 }).nullable();
      t.primary(['request_id', 'message_kind', 'message_id']);
      t.index(['request_id', 'status'], 'ix_erasure_messages_status');
    });
  }
  if (!(await knex.schema.hasTable('erased_users'))) {
    await knex.schema.createTable('erased_users', (t) => {
      t.specificType('user_hash', 'BINARY(32)').notNullable().primary();
      t.datetime('erased_through', { precision: 3 }).notNullable();
      t.string('request_id', 128).notNullable();
    });
  }
  if (!(await knex.schema.hasTable('archive_orphans'))) {
    // Chunk objects no catalog row names any more (a rewrite replaced them); deleted after the commit that orphaned them.
    await knex.schema.createTable('archive_orphans', (t) => {
      t.bigIncrements('id');
      t.string('message_kind', 16).notNullable();
      t.string('message_id', 64).notNullable();
      t.integer('generation').unsigned().notNullable();
      t.string('store', 16).notNullable();
      t.string('object_key', 1024).notNullable();
      t.datetime('recorded_at', { precision: 3 }).notNullable().defaultTo(knex.raw('CURRENT_TIMESTAMP(3)'));
      t.index(['message_kind', 'message_id'], 'ix_archive_orphans_message');
    });
  }
}

export async function down(knex: Knex): Promise<void> {
  for (const t of ['archive_orphans', 'erased_users', 'erasure_messages', 'erasure_requests']) await knex.schema.dropTableIfExists(t);
}
