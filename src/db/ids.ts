/**
 * Ids are exact, byte for byte: `CS1` and `cs1` are two messages, `Bob` and `bob` two users, as they
 * are two workflow IDs in Temporal. Every id column therefore compares in binary (migration 007); a
 * table made later declares its id columns with `idColumn`, never with the database's case-insensitive
 * default. Tags, e-mail addresses and free-text names keep the default collation.
 */
import type { Knex } from 'knex';

export const ID_CHARSET = 'utf8mb4';
export const ID_COLLATION = 'utf8mb4_bin';

/** The SQL type of an id column of `length` characters, for raw DDL. */
export function idColumnType(length = 64): string {
  if (!Number.isInteger(length) || length < 1 || length > 255) throw new Error(`id columns are 1-255 characters, not ${length}`);
  return `VARCHAR(${length}) CHARACTER SET ${ID_CHARSET} COLLATE ${ID_COLLATION}`;
}

/** An id column in a knex table builder: `idColumn(t, 'message_id').notNullable()`. */
export function idColumn(t: Knex.CreateTableBuilder | Knex.AlterTableBuilder, name: string, length = 64): Knex.ColumnBuilder {
  return t.specificType(name, idColumnType(length));
}
