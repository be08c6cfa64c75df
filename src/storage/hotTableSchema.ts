/**
 * A schema change of the hot tables: the template `interactions` and every `interactions_<n>` made like
 * it (src/storage/hotTables.ts), one ALTER per table, as one resumable run with progress.
 *
 * The template changes first, so every table made from then on has the change; a table made from a
 * definition read just before it is brought up to date as it is made (`bringUpToDate` in
 * src/storage/hotTableChanges.ts, for the changes listed there). Then
 * every table that exists is changed in table-number order, each unless it already has the change, and
 * `hot_table_changes` records the last one done: a run cut short (a crash, a deploy, an operator's
 * Ctrl-C) goes on from there when it runs again, and a change run twice does nothing the second time.
 */
import type { Knex } from 'knex';
import type { HotTableChange } from './hotTableChanges';
import { HOT_TABLE_TEMPLATE, hotTableExists, hotTableName } from './hotTables';

export interface HotTableChangeProgress {
  change: string;
  /** Tables changed or found changed in this run and those before it. */
  done: number;
  /** Tables there are to go through, counted when this run began (tables made since have the change already). */
  total: number;
  table: string;
}

export interface HotTableChangeResult {
  /** Tables altered by this run. */
  changed: number;
  /** Tables this run found already changed (made after the template changed, or done by an earlier run). */
  alreadyChanged: number;
  /** Tables an earlier, cut-short run had gone through, not looked at again. */
  resumedAfter: number;
  finished: true;
}

interface ProgressRow {
  last_table_no: string | number | null;
  tables_done: string | number;
  finished_at: string | null;
}

/** Table numbers of every hot table there is, in order: from the schema, not the registry, so a table whose registry row is gone is changed too. */
async function hotTableNumbers(q: Knex): Promise<number[]> {
  const [rows] = (await q.raw(
    "SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'interactions\\_%'",
  )) as [{ name: string | Buffer }[]];
  return rows
    .map((r) => /^interactions_([1-9][0-9]*)$/.exec(String(r.name))?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

/**
 * Applies `change` to the template and to every hot table, resuming after the last table an earlier run
 * of the same change recorded. `onProgress` is called after each table.
 */
export async function changeEveryHotTable(
  q: Knex,
  change: HotTableChange,
  onProgress?: (p: HotTableChangeProgress) => void | Promise<void>,
): Promise<HotTableChangeResult> {
  await q('hot_table_changes').insert({ change_id: change.id, tables_done: 0 }).onConflict('change_id').ignore();
  const progress = await q('hot_table_changes')
    .where({ change_id: change.id })
    .first<ProgressRow>('last_table_no', 'tables_done', 'finished_at');
  const result: HotTableChangeResult = { changed: 0, alreadyChanged: 0, resumedAfter: 0, finished: true };
  if (progress?.finished_at) return result;
  if (!(await change.applied(q, HOT_TABLE_TEMPLATE))) await change.apply(q, HOT_TABLE_TEMPLATE);

  const after = Number(progress?.last_table_no ?? 0);
  const all = await hotTableNumbers(q);
  const todo = all.filter((n) => n > after);
  let done = Number(progress?.tables_done ?? 0);
  result.resumedAfter = done;
  const total = done + todo.length;
  for (const no of todo) {
    const table = hotTableName(no);
    // A table dropped meanwhile (archived) is simply gone: `applied` on it answers whatever, and the
    // ALTER would fail, so it is looked for first.
    if (await hotTableExists(q, { name: table })) {
      if (await change.applied(q, table)) result.alreadyChanged += 1;
      else {
        await change.apply(q, table);
        result.changed += 1;
      }
    }
    done += 1;
    await q('hot_table_changes').where({ change_id: change.id }).update({ last_table_no: no, tables_done: done });
    await onProgress?.({ change: change.id, done, total, table });
  }
  await q('hot_table_changes')
    .where({ change_id: change.id })
    .update({ finished_at: q.fn.now(3) });
  return result;
}
