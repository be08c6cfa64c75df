import type { Knex } from 'knex';

/**
 * Ids are exact, byte for byte (src/db/ids.ts): every id column moves from the database's
 * case-insensitive collation to utf8mb4_bin, keeping its type, length, nullability and default. Until
 * now `CS1` and `cs1` were one row to MySQL but two workflows to Temporal, so an event spelled
 * otherwise than its message landed in the message's table, and the restore then refused the rows it
 * had archived.
 *
 * What was one message stays one message: before a table's columns are converted, every message id in
 * it that the database compared equal to a message's own spelling takes that spelling — the one of the
 * definition (`messages.id`), else of its hot-table registry row (the current one first), else of its
 * availability row — and so do the hot rows in each message's `interactions_<n>` table. Chunks already
 * archived keep the bytes their checksums cover; the restore puts their rows back in the message's
 * spelling (src/storage/restorer.ts). User ids are converted as they are: summaries that the old
 * collation had merged (`Bob` and `bob`) stay under the spelling stored first, as the events that made
 * them are partly archived.
 *
 * Plain SQL that MariaDB 10.11 and MySQL 8 both run. Each table is converted by one ALTER TABLE (which
 * commits on its own), and a table whose columns are already binary is skipped, respelling included:
 * a run stopped anywhere is finished by running the migration again.
 */
export const config = { transaction: false };

/** Id columns outside the hot tables: message, user, event, audience, segment and component ids. */
const ID_COLUMNS: Readonly<Record<string, readonly string[]>> = {
  messages: ['id'],
  message_tags: ['message_id'],
  message_availability: ['message_id'],
  message_components: ['message_id', 'component_id'],
  legacy_purged_messages: ['message_id'],
  archive_manifests: ['message_id'],
  archive_chunks: ['message_id'],
  hot_tables: ['message_id'],
  ingested_events: ['event_id'],
  users: ['id'],
  user_message_receipts: ['message_id', 'step_id', 'user_id'],
  user_clicked_aliases: ['user_id'],
  user_messages: ['user_id', 'message_id'],
  message_analytics: ['message_id', 'variant_id', 'step_id', 'variation_id'],
  audiences: ['id', 'message_id'],
  audience_filters: ['audience_id', 'target_id'],
  audience_segments: ['audience_id', 'segment_id'],
  bulk_restore_items: ['message_id'],
};

/** Id columns of the template `interactions` and of every `interactions_<n>` made like it. */
const HOT_ID_COLUMNS = ['event_id', 'message_id', 'user_id', 'variant_id', 'step_id', 'variation_id'] as const;
const HOT_TEMPLATE = 'interactions';
const HOT_TABLE_RE = /^interactions_[1-9][0-9]*$/;

/** Message ids that take their message's spelling, with the column naming the kind beside each. */
const MESSAGE_ID_REFS: readonly (readonly [table: string, kindColumn: string, idColumn: string])[] = [
  ['hot_tables', 'message_kind', 'message_id'],
  ['message_tags', 'kind', 'message_id'],
  ['message_availability', 'kind', 'message_id'],
  ['message_components', 'kind', 'message_id'],
  ['legacy_purged_messages', 'kind', 'message_id'],
  ['archive_manifests', 'message_kind', 'message_id'],
  ['archive_chunks', 'message_kind', 'message_id'],
  ['user_message_receipts', 'message_kind', 'message_id'],
  ['user_messages', 'message_kind', 'message_id'],
  ['message_analytics', 'message_kind', 'message_id'],
  // Campaign and Canvas audiences name the message they target; the type is its kind.
  ['audiences', 'type', 'message_id'],
  ['audience_filters', 'target_kind', 'target_id'],
  ['bulk_restore_items', 'kind', 'message_id'],
  [HOT_TEMPLATE, 'message_kind', 'message_id'],
];

/** Each message's one spelling while the migration runs; a work table of its own, dropped at the end. */
const CANON = 'migration_007_spellings';

const BIN = 'utf8mb4_bin';

/** Foreign keys onto `audiences.id` as migration 001 made them; any other found is kept as found. */
const KNOWN_FOREIGN_KEYS: readonly ForeignKey[] = [
  {
    name: 'audience_filters_audience_id_foreign',
    table: 'audience_filters',
    column: 'audience_id',
    refColumn: 'id',
    onDelete: 'CASCADE',
    onUpdate: 'RESTRICT',
  },
  {
    name: 'audience_segments_audience_id_foreign',
    table: 'audience_segments',
    column: 'audience_id',
    refColumn: 'id',
    onDelete: 'CASCADE',
    onUpdate: 'RESTRICT',
  },
];

interface ForeignKey {
  name: string;
  table: string;
  column: string;
  refColumn: string;
  onDelete: string;
  onUpdate: string;
}

interface ColumnInfo {
  name: string;
  type: string;
  nullable: boolean;
  /** COLUMN_DEFAULT as the server reports it: SQL text on MariaDB, the bare value on MySQL. */
  defaultValue: string | null;
  charset: string | null;
  collation: string | null;
  comment: string;
}

type Target = { to: 'bin' } | { to: 'table default' };

export async function up(knex: Knex): Promise<void> {
  const hotTables = await hotTableNames(knex);
  await respellMessageIds(knex, hotTables);
  await convertAll(knex, hotTables, { to: 'bin' });
}

/**
 * Back to each table's default collation. Fails on a unique key when ids that differ only in case
 * were stored since (`Bob` and `bob`): those are two rows now and would be one then.
 */
export async function down(knex: Knex): Promise<void> {
  await convertAll(knex, await hotTableNames(knex), { to: 'table default' });
}

async function convertAll(knex: Knex, hotTables: readonly string[], target: Target): Promise<void> {
  const mariadb = await isMariaDb(knex);
  const tables: [string, readonly string[]][] = [
    ...Object.entries(ID_COLUMNS),
    [HOT_TEMPLATE, HOT_ID_COLUMNS],
    ...hotTables.map((t): [string, readonly string[]] => [t, HOT_ID_COLUMNS]),
  ];
  // MySQL refuses to change the collation of a column on either side of a foreign key; the keys go
  // for the conversion of the tables they join and come back as they were.
  const found = await foreignKeysOnto(knex, 'audiences');
  const keys = [...found, ...KNOWN_FOREIGN_KEYS.filter((k) => !found.some((f) => f.table === k.table && f.column === k.column))];
  const joined = new Set(['audiences', ...keys.map((k) => k.table)]);
  let keysDropped = false;
  for (const [table, columns] of tables) {
    const alter = await alterClauses(knex, table, columns, target, mariadb);
    if (alter === null) continue;
    if (joined.has(table) && !keysDropped) {
      for (const k of found) await knex.raw(`ALTER TABLE ${q(k.table)} DROP FOREIGN KEY ${q(k.name)}`);
      keysDropped = true;
    }
    await knex.raw(`ALTER TABLE ${q(table)} ${alter}`);
  }
  // Also after a run stopped between dropping a key and adding it back.
  const present = await foreignKeysOnto(knex, 'audiences');
  for (const k of keys) {
    if (present.some((p) => p.table === k.table && p.column === k.column)) continue;
    if (!(await tableExists(knex, k.table))) continue;
    await knex.raw(
      `ALTER TABLE ${q(k.table)} ADD CONSTRAINT ${q(k.name)} FOREIGN KEY (${q(k.column)}) REFERENCES ${q('audiences')} (${q(k.refColumn)}) ` +
        `ON DELETE ${rule(k.onDelete)} ON UPDATE ${rule(k.onUpdate)}`,
    );
  }
}

/** `MODIFY …` clauses for the columns not yet in the target collation, or null when none is left. */
async function alterClauses(
  knex: Knex,
  table: string,
  columns: readonly string[],
  target: Target,
  mariadb: boolean,
): Promise<string | null> {
  const info = await columnsOf(knex, table);
  if (info.size === 0) return null; // a table a later migration made, or a hot table dropped meanwhile
  const tableDefault = target.to === 'bin' ? BIN : await tableCollation(knex, table);
  const clauses: string[] = [];
  for (const name of columns) {
    const c = info.get(name);
    if (!c || c.collation === null) continue;
    const collation = target.to === 'bin' ? BIN : c.collation === BIN ? tableDefault : null;
    if (collation === null || c.collation === collation) continue;
    clauses.push(
      `MODIFY ${q(c.name)} ${c.type} CHARACTER SET ${sqlName(collation.split('_')[0])} COLLATE ${sqlName(collation)} ` +
        `${c.nullable ? 'NULL' : 'NOT NULL'}${defaultClause(c, mariadb)}${c.comment ? ` COMMENT ${literal(c.comment)}` : ''}`,
    );
  }
  return clauses.length > 0 ? clauses.join(', ') : null;
}

/**
 * Every message id the database compared equal to a message's spelling takes that spelling, table by
 * table, before the table's columns become exact; tables already exact are left as they are.
 */
async function respellMessageIds(knex: Knex, hotTables: readonly string[]): Promise<void> {
  const messages = await columnsOf(knex, 'messages');
  const messageId = messages.get('id')?.collation ?? null;
  const ci = messageId !== null && messageId !== BIN ? messageId : 'utf8mb4_unicode_ci';
  await knex.raw(`DROP TABLE IF EXISTS ${q(CANON)}`);
  // Its key compares as the ids did, so the first spelling of a message inserted is its only one.
  await knex.raw(
    `CREATE TABLE ${q(CANON)} (kind VARCHAR(16) CHARACTER SET utf8mb4 COLLATE ${sqlName(ci)} NOT NULL, ` +
      `id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE ${sqlName(ci)} NOT NULL, PRIMARY KEY (kind, id))`,
  );
  const sources = [
    'SELECT kind, id FROM messages',
    "SELECT message_kind, message_id FROM hot_tables ORDER BY CASE role WHEN 'current' THEN 0 ELSE 1 END, table_no",
    'SELECT kind, message_id FROM message_availability',
  ];
  for (const select of sources) await knex.raw(`INSERT IGNORE INTO ${q(CANON)} (kind, id) ${select}`);

  for (const [table, kindColumn, idColumn] of MESSAGE_ID_REFS) {
    const info = await columnsOf(knex, table);
    const kind = info.get(kindColumn)?.collation;
    const id = info.get(idColumn)?.collation;
    if (!kind || !id || id === BIN) continue;
    await knex.raw(
      `UPDATE ${q(table)} t JOIN ${q(CANON)} c ON t.${q(kindColumn)} = c.kind COLLATE ${sqlName(kind)} AND t.${q(idColumn)} = c.id COLLATE ${sqlName(id)} ` +
        `SET t.${q(idColumn)} = c.id WHERE CAST(t.${q(idColumn)} AS BINARY) <> CAST(c.id AS BINARY)`,
    );
  }

  // Each message's own table holds its rows only: they take the (now respelled) registry's spelling.
  const registry = await knex('hot_tables').select<{ table_no: string | number; message_kind: string; message_id: string }[]>(
    'table_no',
    'message_kind',
    'message_id',
  );
  const existing = new Set(hotTables);
  for (const r of registry) {
    const table = `interactions_${String(r.table_no)}`;
    if (!existing.has(table)) continue;
    if ((await columnsOf(knex, table)).get('message_id')?.collation === BIN) continue;
    await knex.raw(
      `UPDATE ${q(table)} SET message_id = ? WHERE message_kind = ? AND message_id = ? AND CAST(message_id AS BINARY) <> CAST(? AS BINARY)`,
      [r.message_id, r.message_kind, r.message_id, r.message_id],
    );
  }
  await knex.raw(`DROP TABLE IF EXISTS ${q(CANON)}`);
}

async function hotTableNames(knex: Knex): Promise<string[]> {
  const [rows] = (await knex.raw(
    "SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'interactions\\_%'",
  )) as [{ name: SchemaText }[]];
  return rows
    .map((r) => text(r.name) ?? '')
    .filter((n) => HOT_TABLE_RE.test(n))
    .sort((a, b) => a.length - b.length || (a < b ? -1 : 1));
}

async function columnsOf(knex: Knex, table: string): Promise<Map<string, ColumnInfo>> {
  const [rows] = (await knex.raw(
    'SELECT COLUMN_NAME AS name, COLUMN_TYPE AS type, IS_NULLABLE AS nullable, COLUMN_DEFAULT AS dflt, CHARACTER_SET_NAME AS charset, ' +
      'COLLATION_NAME AS coll, COLUMN_COMMENT AS comment FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?',
    [table],
  )) as [Record<string, SchemaText>[]];
  const out = new Map<string, ColumnInfo>();
  for (const r of rows) {
    const name = text(r.name) ?? '';
    out.set(name, {
      name,
      type: text(r.type) ?? '',
      nullable: text(r.nullable) === 'YES',
      defaultValue: text(r.dflt),
      charset: text(r.charset),
      collation: text(r.coll),
      comment: text(r.comment) ?? '',
    });
  }
  return out;
}

async function tableCollation(knex: Knex, table: string): Promise<string> {
  const [rows] = (await knex.raw(
    'SELECT TABLE_COLLATION AS coll FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?',
    [table],
  )) as [{ coll: SchemaText }[]];
  const coll = text(rows[0]?.coll);
  // A table whose default is binary, or not utf8mb4, gets the collation the database is created with.
  return coll && coll.startsWith('utf8mb4_') && coll !== BIN ? coll : 'utf8mb4_unicode_ci';
}

async function tableExists(knex: Knex, table: string): Promise<boolean> {
  return (await columnsOf(knex, table)).size > 0;
}

async function foreignKeysOnto(knex: Knex, referenced: string): Promise<ForeignKey[]> {
  const [rows] = (await knex.raw(
    'SELECT k.CONSTRAINT_NAME AS name, k.TABLE_NAME AS tbl, k.COLUMN_NAME AS col, k.REFERENCED_COLUMN_NAME AS refCol, r.DELETE_RULE AS onDelete, r.UPDATE_RULE AS onUpdate ' +
      'FROM information_schema.KEY_COLUMN_USAGE k JOIN information_schema.REFERENTIAL_CONSTRAINTS r ' +
      'ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME AND r.TABLE_NAME = k.TABLE_NAME ' +
      'WHERE k.TABLE_SCHEMA = DATABASE() AND k.REFERENCED_TABLE_NAME = ?',
    [referenced],
  )) as [Record<string, SchemaText>[]];
  return rows.map((r) => ({
    name: text(r.name) ?? '',
    table: text(r.tbl) ?? '',
    column: text(r.col) ?? '',
    refColumn: text(r.refCol) ?? 'id',
    onDelete: text(r.onDelete) ?? 'RESTRICT',
    onUpdate: text(r.onUpdate) ?? 'RESTRICT',
  }));
}

async function isMariaDb(knex: Knex): Promise<boolean> {
  const [rows] = (await knex.raw('SELECT VERSION() AS v')) as [{ v: SchemaText }[]];
  return /mariadb/i.test(text(rows[0]?.v) ?? '');
}

/**
 * The column's default as DDL. MariaDB reports it as SQL already (`'active'`, `NULL`, `''`); MySQL
 * reports the bare value, and NULL both for no default and for DEFAULT NULL (the same for a nullable
 * column, and a NOT NULL one cannot default to NULL).
 */
function defaultClause(c: ColumnInfo, mariadb: boolean): string {
  if (c.defaultValue === null) return '';
  return ` DEFAULT ${mariadb ? c.defaultValue : literal(c.defaultValue)}`;
}

/** information_schema text as mysql2 hands it over: a string, or on some servers a Buffer. */
type SchemaText = string | Buffer | null;

function text(value: SchemaText | undefined): string | null {
  if (value === null || value === undefined) return null;
  return Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
}

function q(identifier: string): string {
  return `\`${identifier.replace(/`/g, '``')}\``;
}

function sqlName(name: string): string {
  if (!/^[A-Za-z0-9_]+$/.test(name)) throw new Error(`unexpected character set or collation name ${JSON.stringify(name)}`);
  return name;
}

function rule(value: string): string {
  const r = value.toUpperCase();
  if (!['CASCADE', 'RESTRICT', 'NO ACTION', 'SET NULL', 'SET DEFAULT'].includes(r))
    throw new Error(`unexpected foreign key rule ${JSON.stringify(value)}`);
  return r;
}

/** A string literal for DDL text, which takes no bound parameters. */
function literal(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}
