import type { Knex } from 'knex';
import { idColumn, idColumnType, ID_COLLATION } from '../ids';

/**
 * Wake-ups for sleeping actors (src/lifecycle/lateWakeups.ts): ingestion notes here, in each batch's
 * transaction, every message it stored an event for while the message's data was unavailable; the
 * worker's dispatcher signals those actors from it, at most once per cleanup interval per message.
 * An expired actor sleeps without a timer and relies on this row instead.
 *
 * Also makes the message ids of migration 013's tables exact, as every other id column is (migration
 * 007): `CS1` and `cs1` are two messages in an erasure's progress and among a rewrite's orphans too.
 */
export async function up(knex: Knex): Promise<void> {
  if (!(await knex.schema.hasTable('late_wakeups'))) {
    await knex.schema.createTable('late_wakeups', (t) => {
      t.string('message_kind', 16).notNullable();
      idColumn(t, 'message_id').notNullable();
      // The latest late event's ingestion; the dispatcher signals when it is after the last signal.
      t.datetime('noted_at', { precision: 3 }).notNullable();
      t.datetime('signalled_at', { precision: 3 }).nullable();
      t.primary(['message_kind', 'message_id']);
      t.index(['signalled_at'], 'ix_late_wakeups_signalled');
    });
  }
  for (const table of ['erasure_messages', 'archive_orphans']) {
    const [rows] = (await knex.raw(
      `SELECT COLLATION_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = 'message_id'`,
      [table],
    )) as [{ c: string | null }[]];
    if (rows[0]?.c === ID_COLLATION) continue;
    await knex.raw(`ALTER TABLE \`${table}\` MODIFY message_id ${idColumnType()} NOT NULL`);
  }
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('late_wakeups');
}
