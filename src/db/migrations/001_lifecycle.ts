import type { Knex } from 'knex';

/**
 * Lifecycle schema: messages and their tags, the availability record the actors write, the hot
 * interaction rows, long-term storage (manifests + compressed chunks), retargeting references and the
 * e-mail outbox. utf8mb4 throughout; DATETIME(3) in UTC.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('messages', (t) => {
    t.string('kind', 16).notNullable();
    t.string('id', 64).notNullable();
    t.string('name', 255).nullable();
    t.string('status', 16).notNullable().defaultTo('active');
    t.datetime('created_at', { precision: 3 }).notNullable().defaultTo(knex.raw('CURRENT_TIMESTAMP(3)'));
    t.datetime('updated_at', { precision: 3 }).notNullable().defaultTo(knex.raw('CURRENT_TIMESTAMP(3)'));
    t.primary(['kind', 'id']);
  });

  await knex.schema.createTable('message_tags', (t) => {
    t.string('kind', 16).notNullable();
    t.string('message_id', 64).notNullable();
    t.string('tag', 100).notNullable();
    t.primary(['kind', 'message_id', 'tag']);
    t.index(['tag', 'kind'], 'ix_message_tags_tag');
  });

  await knex.schema.createTable('message_availability', (t) => {
    t.string('kind', 16).notNullable();
    t.string('message_id', 64).notNullable();
    t.string('state', 16).notNullable();
    t.boolean('available').notNullable();
    t.datetime('stopped_at', { precision: 3 }).nullable();
    t.datetime('expires_at', { precision: 3 }).nullable();
    t.integer('generation').unsigned().notNullable().defaultTo(0);
    t.bigInteger('revision').unsigned().notNullable();
    t.datetime('updated_at', { precision: 3 }).notNullable().defaultTo(knex.raw('CURRENT_TIMESTAMP(3)'));
    t.primary(['kind', 'message_id']);
    t.index(['state'], 'ix_message_availability_state');
  });

  await knex.schema.createTable('interactions', (t) => {
    t.bigIncrements('id').primary();
    t.string('event_id', 64).notNullable();
    t.string('message_kind', 16).notNullable();
    t.string('message_id', 64).notNullable();
    t.string('user_id', 64).notNullable();
    t.string('event_type', 32).notNullable();
    t.string('variant_id', 64).nullable();
    t.string('step_id', 64).nullable();
    t.string('variation_id', 64).nullable();
    t.string('alias', 255).nullable();
    t.string('channel', 32).nullable();
    t.datetime('occurred_at', { precision: 3 }).notNullable();
    t.unique(['event_id'], { indexName: 'ux_interactions_event_id' });
    // The archive walks one message's rows in id order; this index makes each chunk a range read.
    t.index(['message_kind', 'message_id', 'id'], 'ix_interactions_message');
  });

  await knex.schema.createTable('archive_manifests', (t) => {
    t.string('message_kind', 16).notNullable();
    t.string('message_id', 64).notNullable();
    t.integer('generation').unsigned().notNullable();
    t.string('status', 16).notNullable();
    t.bigInteger('row_count').unsigned().notNullable().defaultTo(0);
    t.integer('chunk_count').unsigned().notNullable().defaultTo(0);
    t.bigInteger('compressed_bytes').unsigned().notNullable().defaultTo(0);
    t.specificType('checksum', 'CHAR(64)').nullable();
    t.datetime('created_at', { precision: 3 }).notNullable().defaultTo(knex.raw('CURRENT_TIMESTAMP(3)'));
    t.datetime('archived_at', { precision: 3 }).nullable();
    t.datetime('restored_at', { precision: 3 }).nullable();
    t.primary(['message_kind', 'message_id', 'generation']);
    t.index(['status'], 'ix_archive_manifests_status');
  });

  await knex.schema.createTable('archive_chunks', (t) => {
    t.string('message_kind', 16).notNullable();
    t.string('message_id', 64).notNullable();
    t.integer('generation').unsigned().notNullable();
    t.integer('seq').unsigned().notNullable();
    t.bigInteger('first_id').unsigned().notNullable();
    t.bigInteger('last_id').unsigned().notNullable();
    t.integer('row_count').unsigned().notNullable();
    t.specificType('checksum', 'CHAR(64)').notNullable();
    t.string('codec', 32).notNullable();
    t.specificType('payload', 'LONGBLOB').notNullable();
    t.datetime('created_at', { precision: 3 }).notNullable().defaultTo(knex.raw('CURRENT_TIMESTAMP(3)'));
    // Set in the same transaction that deletes the chunk's hot rows.
    t.datetime('verified_at', { precision: 3 }).nullable();
    t.primary(['message_kind', 'message_id', 'generation', 'seq']);
  });

  await knex.schema.createTable('audiences', (t) => {
    t.string('id', 64).primary();
    t.string('type', 16).notNullable();
    t.string('name', 255).nullable();
    t.boolean('active').notNullable().defaultTo(false);
    t.datetime('updated_at', { precision: 3 }).notNullable().defaultTo(knex.raw('CURRENT_TIMESTAMP(3)'));
  });

  await knex.schema.createTable('audience_filters', (t) => {
    t.bigIncrements('id').primary();
    t.string('audience_id', 64).notNullable().references('id').inTable('audiences').onDelete('CASCADE');
    t.string('filter_type', 64).notNullable();
    t.string('target_kind', 16).nullable();
    t.string('target_id', 64).nullable();
    t.string('tag', 100).nullable();
    t.index(['target_kind', 'target_id'], 'ix_audience_filters_target');
  });

  await knex.schema.createTable('email_outbox', (t) => {
    t.bigIncrements('id').primary();
    t.string('idempotency_key', 191).notNullable();
    t.string('to_address', 255).notNullable();
    t.string('subject', 255).notNullable();
    t.text('body').notNullable();
    t.string('provider', 16).notNullable();
    t.string('provider_message_id', 128).nullable();
    t.datetime('created_at', { precision: 3 }).notNullable().defaultTo(knex.raw('CURRENT_TIMESTAMP(3)'));
    t.datetime('sent_at', { precision: 3 }).nullable();
    t.unique(['idempotency_key'], { indexName: 'ux_email_outbox_key' });
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const table of [
    'email_outbox',
    'audience_filters',
    'audiences',
    'archive_chunks',
    'archive_manifests',
    'interactions',
    'message_availability',
    'message_tags',
    'messages',
  ]) {
    await knex.schema.dropTableIfExists(table);
  }
}
