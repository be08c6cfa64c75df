import type { Knex } from 'knex';

/**
 * Small messages share a hot table (src/storage/hotTables.ts): a registry entry may name a segment of
 * a shared table (`shared_in`, the shared table's number) instead of a table of its own. A drained
 * table records the first chunk its drain writes (`drain_from_seq`), so the archive finds the chunks
 * it already stored from it by sequence, whatever the ids of the rows it holds.
 */
export async function up(knex: Knex): Promise<void> {
  const columns = await knex('information_schema.COLUMNS')
    .where({ TABLE_NAME: 'hot_tables' })
    .andWhere('TABLE_SCHEMA', knex.raw('DATABASE()'))
    .pluck<string[]>('COLUMN_NAME');
  await knex.schema.alterTable('hot_tables', (t) => {
    if (!columns.includes('shared_in')) t.bigInteger('shared_in').unsigned().nullable();
    if (!columns.includes('drain_from_seq')) t.integer('drain_from_seq').unsigned().nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('hot_tables', (t) => {
    t.dropColumn('shared_in');
    t.dropColumn('drain_from_seq');
  });
}
