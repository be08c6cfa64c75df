import type { Knex } from 'knex';

/**
 * Which users each archived chunk may hold (src/archive/userFilter.ts): a Bloom filter of its user
 * ids in its catalog row, written with the chunk, so that a user's privacy request (an access export,
 * an erasure) reads only the chunks that may hold them. Chunks recorded before this migration have
 * none and are read whatever the user.
 */
export async function up(knex: Knex): Promise<void> {
  if (!(await knex.schema.hasColumn('archive_chunks', 'user_filter'))) {
    await knex.schema.alterTable('archive_chunks', (t) => {
      t.specificType('user_filter', 'MEDIUMBLOB').nullable();
    });
  }
}

export async function down(knex: Knex): Promise<void> {
  if (await knex.schema.hasColumn('archive_chunks', 'user_filter')) {
    await knex.schema.alterTable('archive_chunks', (t) => {
      t.dropColumn('user_filter');
    });
  }
}
