/**
 * The schema changes of the hot tables, in the order they were made. A migration that changes the hot
 * tables defines its change here and runs it with `changeEveryHotTable` (src/storage/hotTableSchema.ts);
 * a table being made as a change runs gets every listed change it lacks (`bringUpToDate`), so a
 * definition read from the template just before the template changed leaves no table behind.
 */
import type { Knex } from 'knex';

export interface HotTableChange {
  /** Names the change in `hot_table_changes`; never reused for another change. */
  id: string;
  /** Whether `table` already has the change: a table made after the template changed, or one a cut-short run did. */
  applied(q: Knex, table: string): Promise<boolean>;
  /** Changes one table; must leave it as `applied` then says. */
  apply(q: Knex, table: string): Promise<void>;
}

/** Every schema change of the hot tables since migration 006, oldest first (none yet). */
export const HOT_TABLE_CHANGES: readonly HotTableChange[] = [];

/** Applies to a newly made table each of `changes` it lacks. */
export async function bringUpToDate(q: Knex, table: string, changes: readonly HotTableChange[] = HOT_TABLE_CHANGES): Promise<void> {
  for (const change of changes) if (!(await change.applied(q, table))) await change.apply(q, table);
}

/** A column added to every hot table (nullable, so the ALTER is instant on MariaDB 10.3+ and MySQL 8). */
export function addHotColumn(id: string, column: string, definition: string): HotTableChange {
  if (!/^[a-z_][a-z0-9_]*$/.test(column)) throw new Error(`not a column name: ${JSON.stringify(column)}`);
  return {
    id,
    async applied(q, table) {
      const [rows] = (await q.raw(
        'SELECT COUNT(*) AS n FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = ?',
        [table, column],
      )) as [{ n: number | string }[]];
      return Number(rows[0].n) > 0;
    },
    async apply(q, table) {
      await q.raw(`ALTER TABLE \`${table}\` ADD COLUMN \`${column}\` ${definition}`);
    },
  };
}
