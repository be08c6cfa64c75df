import type { Knex } from 'knex';

/**
 * One row per message of a bulk restore: registered when the request starts (the set of messages is
 * fixed then), updated with the outcome as each message finishes. The workflow keeps only counters
 * and a cursor through continue-as-new; this table holds the full per-message record, which the
 * summary e-mail lists.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('bulk_restore_items', (t) => {
    // `<request id>/<first run id>`: ASCII by construction, compared byte for byte.
    t.specificType('execution_key', 'VARCHAR(160) CHARACTER SET ascii COLLATE ascii_bin').notNullable();
    // Same character set and collation as the other tables' message columns, so joins use their keys.
    t.string('kind', 16).notNullable();
    t.string('message_id', 64).notNullable();
    t.string('outcome', 24).notNullable();
    t.bigInteger('row_count').unsigned().notNullable().defaultTo(0);
    t.string('reason', 1000).nullable();
    t.datetime('created_at', { precision: 3 }).notNullable().defaultTo(knex.raw('CURRENT_TIMESTAMP(3)'));
    t.datetime('updated_at', { precision: 3 }).notNullable().defaultTo(knex.raw('CURRENT_TIMESTAMP(3)'));
    t.primary(['execution_key', 'kind', 'message_id']);
    // Keyset pages of the pending items, and listings by outcome for the summary.
    t.index(['execution_key', 'outcome', 'kind', 'message_id'], 'ix_bulk_restore_items_outcome');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('bulk_restore_items');
}
