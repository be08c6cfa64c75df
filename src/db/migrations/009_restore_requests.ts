import type { Knex } from 'knex';

/**
 * Restore requests an actor has accepted, kept where a new run finds them: an actor terminated or
 * reset starts again from `message_availability` and this table, so an accepted request is never
 * forgotten. A row is settled when a restore serves it; settling a request whose keep is still under
 * way inserts it settled, so the late keep finds it there and changes nothing.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('restore_requests', (t) => {
    t.specificType('kind', 'VARCHAR(16) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin').notNullable();
    t.specificType('message_id', 'VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin').notNullable();
    t.specificType('request_id', 'VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin').notNullable();
    t.string('requested_by', 320).notNullable().defaultTo('');
    t.datetime('requested_at', { precision: 3 }).notNullable();
    t.string('notify_workflow_id', 255).nullable();
    t.datetime('settled_at', { precision: 3 }).nullable();
    t.primary(['kind', 'message_id', 'request_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('restore_requests');
}
