import type { Knex } from 'knex';

/**
 * Every message's hot rows move into a table of their own (src/storage/hotTables.ts explains the
 * layout); `interactions` stays, empty, as the template those tables are made like.
 *
 * Each message is moved in its own transaction (its rows copied into its table and deleted from
 * `interactions` together), after its table was made and registered, so a run stopped halfway is
 * finished by running `npm run migrate` again: moved messages have no rows left to move.
 *
 * `ix_interactions_message` (message, id) goes first: a message's table is read in primary-key order, and the
 * index would only cost every insert a second B-tree.
 */
export const config = { transaction: false };

const ID_BLOCK = 2n ** 40n;

export async function up(knex: Knex): Promise<void> {
  if (!(await knex.schema.hasTable('hot_tables'))) {
    await knex.schema.createTable('hot_tables', (t) => {
      t.bigIncrements('table_no').primary();
      t.string('message_kind', 16).notNullable();
      t.string('message_id', 64).notNullable();
      // pending | current | draining
      t.string('role', 16).notNullable();
      t.datetime('created_at', { precision: 3 }).notNullable().defaultTo(knex.raw('CURRENT_TIMESTAMP(3)'));
      t.unique(['message_kind', 'message_id', 'role'], { indexName: 'ux_hot_tables_message_role' });
    });
  }
  const [index] = (await knex.raw("SHOW INDEX FROM interactions WHERE Key_name = 'ix_interactions_message'")) as [unknown[]];
  // First, so that no message's table is made with it; ix_interactions_reads finds a message's rows below.
  if (index.length > 0) await knex.schema.alterTable('interactions', (t) => t.dropIndex([], 'ix_interactions_message'));
  await moveRows(knex);
}

async function moveRows(knex: Knex): Promise<void> {
  const [refs] = (await knex.raw('SELECT DISTINCT message_kind, message_id FROM interactions')) as [
    { message_kind: string; message_id: string }[],
  ];
  // Every message's table is made like the template as it stands now, with only its id range its own.
  const [def] = (await knex.raw('SHOW CREATE TABLE interactions')) as [Record<string, string>[]];
  const body = def[0]['Create Table'].replace(/^CREATE TABLE `interactions`/, '').replace(/ AUTO_INCREMENT=\d+/, '');
  for (const ref of refs) {
    const key = { message_kind: ref.message_kind, message_id: ref.message_id };
    let row = await knex('hot_tables')
      .where({ ...key, role: 'current' })
      .first<{ table_no: string } | undefined>('table_no');
    if (!row) {
      await knex('hot_tables').insert({ ...key, role: 'current' });
      row = await knex('hot_tables')
        .where({ ...key, role: 'current' })
        .first<{ table_no: string }>('table_no');
    }
    const no = String(row?.table_no);
    await knex.raw(`CREATE TABLE IF NOT EXISTS \`interactions_${no}\`${body} AUTO_INCREMENT=${(BigInt(no) * ID_BLOCK + 1n).toString()}`);
    await knex.transaction(async (trx) => {
      await trx.raw(`INSERT INTO \`interactions_${no}\` SELECT * FROM interactions WHERE message_kind = ? AND message_id = ?`, [
        key.message_kind,
        key.message_id,
      ]);
      await trx('interactions').where(key).delete();
    });
  }
}

export async function down(knex: Knex): Promise<void> {
  const tables = await knex('hot_tables').select<{ table_no: string; role: string }[]>('table_no', 'role');
  for (const t of tables) {
    const name = `interactions_${t.table_no}`;
    const [exists] = (await knex.raw('SHOW TABLES LIKE ?', [name])) as [unknown[]];
    if (exists.length > 0) {
      await knex.transaction(async (trx) => {
        await trx.raw(`INSERT INTO interactions SELECT * FROM \`${name}\``);
        await trx.raw(`DELETE FROM \`${name}\``);
      });
      await knex.raw(`DROP TABLE \`${name}\``);
    }
  }
  await knex.schema.dropTableIfExists('hot_tables');
  const [index] = (await knex.raw("SHOW INDEX FROM interactions WHERE Key_name = 'ix_interactions_message'")) as [unknown[]];
  if (index.length === 0)
    await knex.schema.alterTable('interactions', (t) => t.index(['message_kind', 'message_id', 'id'], 'ix_interactions_message'));
}
