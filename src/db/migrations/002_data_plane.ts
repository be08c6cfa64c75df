import type { Knex } from 'knex';

/**
 * The interaction data plane: message definitions (variants, steps, variations), legacy purge marks,
 * the per-user summaries and per-message analytics that ingestion maintains and that are never
 * archived, the event-id ledger that makes ingestion idempotent across archiving, audience links, and
 * the two read indexes the features need on the hot table.
 *
 * `interactions` gets indexes only, no columns: the archive codec (src/storage/chunkCodec.ts) stores
 * exactly its column list.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('message_components', (t) => {
    t.string('kind', 16).notNullable();
    t.string('message_id', 64).notNullable();
    // variant (campaign), step or variation (Canvas)
    t.string('component_type', 16).notNullable();
    t.string('component_id', 64).notNullable();
    t.string('name', 255).notNullable();
    t.integer('position').unsigned().notNullable().defaultTo(0);
    t.primary(['kind', 'message_id', 'component_type', 'component_id']);
  });

  await knex.schema.createTable('legacy_purged_messages', (t) => {
    t.string('kind', 16).notNullable();
    t.string('message_id', 64).notNullable();
    t.datetime('purged_at', { precision: 3 }).notNullable();
    t.string('reason', 255).nullable();
    t.primary(['kind', 'message_id']);
  });

  // One row per event id ever ingested. Hot rows leave `interactions` when a message expires, so its
  // unique key alone cannot tell that a re-sent event was already stored; this ledger can, and stays.
  await knex.schema.createTable('ingested_events', (t) => {
    t.string('event_id', 64).notNullable().primary();
  });

  // Per-user summaries (rule 7): read by the summary filters, maintained at ingestion, never archived.
  // No secondary indexes on purpose: each would be rewritten on almost every ingested event.
  await knex.schema.createTable('users', (t) => {
    t.string('id', 64).notNullable().primary();
    t.datetime('first_seen_at', { precision: 3 }).notNullable();
    for (const col of [
      'last_received_at',
      'last_received_email_at',
      'last_received_push_at',
      'last_received_sms_at',
      'last_received_webhook_at',
      'last_received_whatsapp_at',
      'last_engaged_at',
      'last_control_group_at',
      'hard_bounced_at',
      'marked_spam_at',
    ]) {
      t.datetime(col, { precision: 3 }).nullable();
    }
  });

  // "Has Never Received a Message from Campaign or Canvas Step" and unique recipients in analytics.
  await knex.schema.createTable('user_message_receipts', (t) => {
    t.string('message_kind', 16).notNullable();
    t.string('message_id', 64).notNullable();
    t.string('step_id', 64).notNullable().defaultTo(''); // '' for campaigns
    t.string('user_id', 64).notNullable();
    t.datetime('first_received_at', { precision: 3 }).notNullable();
    t.datetime('last_received_at', { precision: 3 }).notNullable();
    t.primary(['message_kind', 'message_id', 'step_id', 'user_id']);
  });

  // "Clicked Alias in Any Campaign or Canvas Step".
  await knex.schema.createTable('user_clicked_aliases', (t) => {
    t.string('alias', 255).notNullable();
    t.string('user_id', 64).notNullable();
    t.datetime('last_clicked_at', { precision: 3 }).notNullable();
    t.primary(['alias', 'user_id']);
  });

  // Message analytics (rule 7): counts per day and dimension, kept apart from the per-user rows.
  await knex.schema.createTable('message_analytics', (t) => {
    t.string('message_kind', 16).notNullable();
    t.string('message_id', 64).notNullable();
    t.date('day').notNullable();
    t.string('event_type', 32).notNullable();
    t.string('variant_id', 64).notNullable().defaultTo('');
    t.string('step_id', 64).notNullable().defaultTo('');
    t.string('variation_id', 64).notNullable().defaultTo('');
    t.string('channel', 32).notNullable().defaultTo('');
    t.bigInteger('count').unsigned().notNullable();
    t.primary(['message_kind', 'message_id', 'day', 'event_type', 'variant_id', 'step_id', 'variation_id', 'channel']);
  });

  await knex.schema.alterTable('audiences', (t) => {
    // For audiences of type campaign or canvas: the message they target people for.
    t.string('message_id', 64).nullable();
    t.index(['type', 'message_id'], 'ix_audiences_message');
  });

  await knex.schema.alterTable('audience_filters', (t) => {
    // Filter parameters beyond the target (variant, step, alias, time window), as JSON.
    t.text('params').nullable();
    t.integer('position').unsigned().notNullable().defaultTo(0);
  });

  await knex.schema.createTable('audience_segments', (t) => {
    t.string('audience_id', 64).notNullable().references('id').inTable('audiences').onDelete('CASCADE');
    t.string('segment_id', 64).notNullable();
    t.primary(['audience_id', 'segment_id']);
    t.index(['segment_id'], 'ix_audience_segments_segment');
  });

  await knex.schema.alterTable('interactions', (t) => {
    // Every retargeting filter on a message: one range per (message, event type), already in user order,
    // and covering for "last received" (occurred_at), so the first page reads about one page of index.
    t.index(['message_kind', 'message_id', 'event_type', 'user_id', 'occurred_at'], 'ix_interactions_reads');
    // Profile lists and the users export: one user's rows.
    t.index(['user_id'], 'ix_interactions_user');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('interactions', (t) => {
    t.dropIndex([], 'ix_interactions_reads');
    t.dropIndex([], 'ix_interactions_user');
  });
  await knex.schema.dropTableIfExists('audience_segments');
  await knex.schema.alterTable('audience_filters', (t) => {
    t.dropColumn('params');
    t.dropColumn('position');
  });
  await knex.schema.alterTable('audiences', (t) => {
    t.dropIndex([], 'ix_audiences_message');
    t.dropColumn('message_id');
  });
  for (const table of [
    'message_analytics',
    'user_clicked_aliases',
    'user_message_receipts',
    'users',
    'ingested_events',
    'legacy_purged_messages',
    'message_components',
  ]) {
    await knex.schema.dropTableIfExists(table);
  }
}
