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
  // Without `shared_in`, a segment's entry would name a table that does not exist and its rows would be lost to readers.
  const segments = await knex('hot_tables').whereNotNull('shared_in').count<{ n: number | string }[]>('* as n');
  if (Number(segments[0].n) > 0) {
    throw new Error(
      `${segments[0].n} hot-table entries are segments of shared tables, which the schema before migration 016 cannot name: archive those messages before undoing it`,
    );
  }
  await knex.schema.alterTable('hot_tables', (t) => {
    t.dropColumn('shared_in');
    t.dropColumn('drain_from_seq');
  });
}
