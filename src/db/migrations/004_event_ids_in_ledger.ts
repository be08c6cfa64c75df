import type { Knex } from 'knex';

/**
 * Event ids are kept unique by the ledger (`ingested_events`) alone. The hot table's unique key on
 * `event_id` never was the whole guarantee (rows leave the hot table when their message expires, and
 * only the ledger remembers them), and it was the costliest of the table's B-trees to maintain: its
 * entries for one message are scattered at random, so every row archived, restored or ingested meant a
 * random descent into it, and for a delete a second one when purge removes the entry. Measured in the
 * database alone (docs/BENCHMARKS.md, `bench:clustering`), a message's move cost markedly less without
 * it. Whatever writes `interactions` other than ingestion (an import) must add its
 * event ids to the ledger in the same transaction.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('interactions', (t) => {
    t.dropUnique(['event_id'], 'ux_interactions_event_id');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('interactions', (t) => {
    t.unique(['event_id'], { indexName: 'ux_interactions_event_id' });
  });
}
