import type { Knex } from 'knex';

/**
 * One row per message: which move attempt may change the message's archive and hot tables
 * (src/storage/fence.ts). Temporal may start a new attempt of an archive, sweep or restore while an
 * earlier one still runs, and a later activity may start while an earlier one's attempt runs on; each
 * attempt claims this row for its generation and phase with a token of its own, and checks, in the
 * transaction of every step that writes, that the row still names its token. A message's first move
 * after the upgrade makes its row.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('move_fences', (t) => {
    // Exact, byte for byte, like every id column since migration 007: `Big` and `big` are two messages.
    t.specificType('message_kind', 'VARCHAR(16) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin').notNullable();
    t.specificType('message_id', 'VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin').notNullable();
    t.integer('generation').unsigned().notNullable();
    // 'archive' (an archive or a sweep) or 'restore': within a generation a restore comes after every archive.
    t.specificType('phase', 'VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin').notNullable();
    // `<workflow run id>/<activity id>/<attempt>` for an activity's attempt; anything unique otherwise.
    t.specificType('token', 'VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin').notNullable();
    t.datetime('claimed_at', { precision: 3 }).notNullable().defaultTo(knex.raw('CURRENT_TIMESTAMP(3)'));
    t.primary(['message_kind', 'message_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('move_fences');
}
