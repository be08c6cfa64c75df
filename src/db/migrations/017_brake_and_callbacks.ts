import type { Knex } from 'knex';
import { idColumn } from '../ids';

/**
 * Restore callbacks: a kept restore request (migration 009) keeps the URL it asked to be called at, so a
 * new run after a terminate or reset still calls it.
 *
 * The archiving brake (src/storage/archivingPause.ts): one row that says whether archiving is paused,
 * by whom, since when and why, read by every worker before and during each archive; and the actors that
 * found it paused when their data was due, so that resuming can wake them at once.
 */
export async function up(knex: Knex): Promise<void> {
  if (!(await knex.schema.hasColumn('restore_requests', 'callback_url'))) {
    await knex.schema.alterTable('restore_requests', (t) => {
      t.string('callback_url', 2000).nullable();
    });
  }
  if (!(await knex.schema.hasTable('archiving_pause'))) {
    await knex.schema.createTable('archiving_pause', (t) => {
      // Always 1: the brake is one switch for the whole deployment.
      t.tinyint('id').unsigned().notNullable().primary();
      t.boolean('paused').notNullable();
      t.string('changed_by', 255).notNullable();
      t.datetime('changed_at', { precision: 3 }).notNullable();
      t.string('reason', 1000).nullable();
    });
  }
  if (!(await knex.schema.hasTable('archiving_holds'))) {
    await knex.schema.createTable('archiving_holds', (t) => {
      t.string('message_kind', 16).notNullable();
      idColumn(t, 'message_id').notNullable();
      t.datetime('held_at', { precision: 3 }).notNullable();
      t.primary(['message_kind', 'message_id']);
    });
  }
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('archiving_holds');
  await knex.schema.dropTableIfExists('archiving_pause');
  if (await knex.schema.hasColumn('restore_requests', 'callback_url')) {
    await knex.schema.alterTable('restore_requests', (t) => {
      t.dropColumn('callback_url');
    });
  }
}
