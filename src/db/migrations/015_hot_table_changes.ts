import type { Knex } from 'knex';

/**
 * Progress of each schema change of the hot tables (src/storage/hotTableSchema.ts): how far a run got,
 * so that one cut short goes on from its last table, and when the change was finished.
 */
export async function up(knex: Knex): Promise<void> {
  if (await knex.schema.hasTable('hot_table_changes')) return;
  await knex.schema.createTable('hot_table_changes', (t) => {
    t.string('change_id', 128).primary();
    t.bigInteger('last_table_no').unsigned().nullable();
    t.integer('tables_done').unsigned().notNullable().defaultTo(0);
    t.datetime('started_at', { precision: 3 }).notNullable().defaultTo(knex.fn.now(3));
    t.datetime('finished_at', { precision: 3 }).nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('hot_table_changes');
}
