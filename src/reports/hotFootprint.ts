/**
 * What a message's hot rows take in MySQL, for the forecast and the storage report. A message in a
 * table of its own is counted by that table: its rows and the bytes InnoDB gives for its data and
 * indexes (information_schema: statistics, so approximate, and whole pages for a small table). A
 * message in a shared table is counted exactly (a range of the primary key), its bytes its share of
 * the shared table's by rows.
 */
import type { Db } from '../db/knex';
import type { MessageKind, MessageRef } from '../shared/types';
import { hotTableName, messageHotTables } from '../storage/hotTables';

export interface Footprint {
  rows: number;
  bytes: number;
}

export const messageKey = (kind: string, id: string): string => `${kind}:${id}`;

interface TableStats {
  rows: number;
  bytes: number;
}

/** InnoDB's figures for these tables, by name. */
async function tableStats(db: Db, names: readonly string[]): Promise<Map<string, TableStats>> {
  const stats = new Map<string, TableStats>();
  if (names.length === 0) return stats;
  const rows = await db('information_schema.TABLES')
    .whereRaw('TABLE_SCHEMA = DATABASE()')
    .whereIn('TABLE_NAME', names)
    .select<{ name: string; rows: number | string | null; bytes: number | string | null }[]>(
      'TABLE_NAME as name',
      'TABLE_ROWS as rows',
      db.raw('DATA_LENGTH + INDEX_LENGTH as bytes'),
    );
  for (const r of rows) stats.set(r.name, { rows: Number(r.rows ?? 0), bytes: Number(r.bytes ?? 0) });
  return stats;
}

function bytesPerRow(s: TableStats | undefined): number {
  return s && s.rows > 0 ? s.bytes / s.rows : 0;
}

/** One message's hot footprint, counted exactly (COUNT(*) of its table or its range of a shared one). */
export async function messageFootprint(db: Db, ref: MessageRef): Promise<Footprint> {
  const tables = await messageHotTables(db, ref);
  const stats = await tableStats(db, [...new Set(tables.map((t) => t.name))]);
  let rows = 0;
  let bytes = 0;
  for (const t of tables) {
    const q = db(t.name);
    if (t.shared) q.where({ message_kind: ref.kind, message_id: ref.id });
    const n = Number((await q.count<{ n: number }[]>('* as n'))[0]?.n ?? 0);
    rows += n;
    bytes += t.shared ? Math.round(n * bytesPerRow(stats.get(t.name))) : (stats.get(t.name)?.bytes ?? 0);
  }
  return { rows, bytes };
}

/**
 * Every message's hot footprint at once: own tables from InnoDB's statistics (one query), shared tables
 * by one GROUP BY each (a scan of their primary key).
 */
export async function allFootprints(db: Db): Promise<Map<string, Footprint>> {
  const out = new Map<string, Footprint>();
  const add = (kind: string, id: string, f: Footprint) => {
    const key = messageKey(kind, id);
    const was = out.get(key) ?? { rows: 0, bytes: 0 };
    out.set(key, { rows: was.rows + f.rows, bytes: was.bytes + f.bytes });
  };
  const own = await db('hot_tables')
    .whereIn('role', ['current', 'draining'])
    .whereNull('shared_in')
    .select<{ table_no: string | number; message_kind: MessageKind; message_id: string }[]>('table_no', 'message_kind', 'message_id');
  const ownStats = await tableStats(
    db,
    own.map((e) => hotTableName(e.table_no)),
  );
  for (const e of own) {
    const s = ownStats.get(hotTableName(e.table_no));
    if (s) add(e.message_kind, e.message_id, s);
  }
  // Read as registered, not through sharedHotTables, which makes them when missing: a report changes nothing.
  const sharedEntries = await db('hot_tables').where({ role: 'shared' }).select<{ table_no: string | number }[]>('table_no');
  const sharedStats = await tableStats(
    db,
    sharedEntries.map((e) => hotTableName(e.table_no)),
  );
  for (const name of sharedStats.keys()) {
    const perRow = bytesPerRow(sharedStats.get(name));
    const counts = await db(name)
      .groupBy('message_kind', 'message_id')
      .select<{ kind: MessageKind; id: string; n: number | string }[]>('message_kind as kind', 'message_id as id', db.raw('COUNT(*) as n'));
    for (const c of counts) add(c.kind, c.id, { rows: Number(c.n), bytes: Math.round(Number(c.n) * perRow) });
  }
  return out;
}
