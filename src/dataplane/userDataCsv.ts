/**
 * The User Data CSV export of one campaign or Canvas: one line per user who has interaction rows for
 * it, streamed from MySQL to the client with backpressure (constant memory however many users).
 *
 * The availability check and the rows come from one read-only snapshot, so an archive starting while
 * the file streams cannot cut it short: the export is the data as it was when it started. An expired
 * message is refused before the first byte (409 with how to restore), never answered with an empty file.
 */
import { Readable, Transform, type TransformCallback } from 'node:stream';
import type { Knex } from 'knex';
import type { Db } from '../db/knex';
import type { MessageRef } from '../shared/types';
import { currentHotTable, type HotTable } from '../storage/hotTables';
import { conflict, notFound } from './errors';
import { loadMessage, type StoredMessage } from './messages';
import { refKey } from './model';
import { availabilityOf, isoTime, rereadIfTableMoved } from './sql';

export const CAMPAIGN_CSV_COLUMNS = [
  'user_id',
  'variant_api_id',
  'variant_name',
  'in_control',
  'first_received',
  'last_received',
  'times_received',
  'last_opened',
  'last_clicked',
  'converted',
  'last_converted',
] as const;

export const CANVAS_CSV_COLUMNS = [
  'user_id',
  'variation_api_id',
  'variation_name',
  'in_control',
  'last_entered',
  'last_exited',
  'first_received',
  'last_received',
  'times_received',
  'steps_received',
  'last_opened',
  'last_clicked',
  'converted',
  'last_converted',
] as const;

interface CsvRow {
  user_id: string;
  component_id: string | null;
  in_control: number | string;
  first_received: string | null;
  last_received: string | null;
  times_received: number | string;
  last_opened: string | null;
  last_clicked: string | null;
  last_converted: string | null;
  last_entered: string | null;
  last_exited: string | null;
  steps: string | null;
}

/** RFC 4180 quoting; a cell a spreadsheet would run as a formula is prefixed with an apostrophe. */
export function csvCell(value: string | number | boolean | null): string {
  if (value === null) return '';
  let text = String(value);
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function restoreHint(ref: MessageRef): string {
  return (
    `Restore it with POST /v1/messages/${ref.kind}/${ref.id}/restore {"requestedBy": "<your e-mail>"} ` +
    `(or: npx interaction-data restore ${ref.kind}:${ref.id} --requested-by <your e-mail>); ` +
    'you get an e-mail when the data is available again, then export again.'
  );
}

/**
 * Per-user aggregates of one message, in user order; components resolved to the latest one seen. The
 * message's table holds its rows only, so a scan of it (the plan when every row matches) reads nothing else.
 */
export function userDataRowsQuery(trx: Db, table: HotTable, ref: MessageRef): Knex.Raw {
  const componentCol = ref.kind === 'campaign' ? 'variant_id' : 'variation_id';
  const componentEvent = ref.kind === 'campaign' ? 'received' : 'entered_variation';
  // SUBSTRING_INDEX(GROUP_CONCAT(... ORDER BY occurred_at DESC), ',', 1): the latest value (ids hold no commas).
  return trx.raw(
    `SELECT user_id,
       SUBSTRING_INDEX(GROUP_CONCAT(CASE WHEN event_type = ? THEN ${componentCol} END ORDER BY occurred_at DESC SEPARATOR ','), ',', 1) AS component_id,
       MAX(event_type = 'control_group') AS in_control,
       MIN(CASE WHEN event_type = 'received' THEN occurred_at END) AS first_received,
       MAX(CASE WHEN event_type = 'received' THEN occurred_at END) AS last_received,
       SUM(event_type = 'received') AS times_received,
       MAX(CASE WHEN event_type = 'opened' THEN occurred_at END) AS last_opened,
       MAX(CASE WHEN event_type = 'clicked' THEN occurred_at END) AS last_clicked,
       MAX(CASE WHEN event_type = 'converted' THEN occurred_at END) AS last_converted,
       MAX(CASE WHEN event_type = 'entered_variation' THEN occurred_at END) AS last_entered,
       MAX(CASE WHEN event_type = 'exited' THEN occurred_at END) AS last_exited,
       GROUP_CONCAT(DISTINCT CASE WHEN event_type = 'received' THEN step_id END SEPARATOR ',') AS steps
     FROM ??
     WHERE message_kind = ? AND message_id = ?
     GROUP BY user_id
     ORDER BY user_id`,
    [componentEvent, table.name, ref.kind, ref.id],
  );
}

function toLine(message: StoredMessage, r: CsvRow): string {
  const comps = message.kind === 'campaign' ? message.variants : message.variations;
  const comp = r.component_id ? comps.find((c) => c.id.toLowerCase() === r.component_id!.toLowerCase()) : undefined;
  const converted = r.last_converted !== null;
  const inControl = Number(r.in_control) === 1;
  const cells =
    message.kind === 'campaign'
      ? [r.user_id, r.component_id, comp?.name ?? null, inControl, isoTime(r.first_received), isoTime(r.last_received), Number(r.times_received), isoTime(r.last_opened), isoTime(r.last_clicked), converted, isoTime(r.last_converted)]
      : [
          r.user_id,
          r.component_id,
          comp?.name ?? null,
          inControl,
          isoTime(r.last_entered),
          isoTime(r.last_exited),
          isoTime(r.first_received),
          isoTime(r.last_received),
          Number(r.times_received),
          (r.steps ?? '')
            .split(',')
            .filter(Boolean)
            .map((id) => message.steps.find((s) => s.id.toLowerCase() === id.toLowerCase())?.name ?? id)
            .sort()
            .join('; ') || null,
          isoTime(r.last_opened),
          isoTime(r.last_clicked),
          converted,
          isoTime(r.last_converted),
        ];
  return cells.map(csvCell).join(',') + '\r\n';
}

export interface UserDataExport {
  message: StoredMessage;
  filename: string;
  stream: Readable;
}

/**
 * Opens the export: refuses unknown (404) and unavailable (409) messages before anything is sent,
 * then returns the stream, which owns a read-only transaction until it ends or is destroyed.
 */
export async function openUserDataCsv(db: Db, ref: MessageRef): Promise<UserDataExport> {
  const message = await loadMessage(db, ref);
  if (!message) throw notFound(`no ${ref.kind} ${JSON.stringify(ref.id)}`);
  const { trx, table } = await rereadIfTableMoved(() => openSnapshot(db, ref, message));
  let finished = false;
  const finish = (ok: boolean) => {
    if (finished) return;
    finished = true;
    void (ok ? trx.commit() : trx.rollback()).catch(() => undefined);
  };
  const columns = ref.kind === 'campaign' ? CAMPAIGN_CSV_COLUMNS : CANVAS_CSV_COLUMNS;
  // A message without a table never had a row: the file is its header.
  const source = table ? (userDataRowsQuery(trx, table, ref).stream({ highWaterMark: 500 }) as Readable) : Readable.from([]);
  let headerSent = false;
  const csv = new Transform({
    writableObjectMode: true,
    transform(row: CsvRow, _enc, done: TransformCallback) {
      const head = headerSent ? '' : columns.join(',') + '\r\n';
      headerSent = true;
      done(null, head + toLine(message, row));
    },
    flush(done: TransformCallback) {
      done(null, headerSent ? '' : columns.join(',') + '\r\n');
    },
  });
  source.on('error', (err) => csv.destroy(err));
  source.pipe(csv);
  csv.on('end', () => finish(true));
  csv.on('close', () => {
    if (!csv.readableEnded) source.destroy();
    finish(csv.readableEnded);
  });
  return { message, filename: `${ref.kind}-${ref.id}-user-data.csv`, stream: csv };
}

/**
 * The export's read-only transaction, once the message is known to be available in it, with the
 * message's table as of the same snapshot. The table is read once here: from then on an archive cannot
 * drop it before the transaction ends, and one that dropped it already fails this before anything is
 * sent, so the caller opens the export again and finds the message unavailable.
 */
async function openSnapshot(db: Db, ref: MessageRef, message: StoredMessage): Promise<{ trx: Knex.Transaction; table: HotTable | null }> {
  const trx = await db.transaction(undefined, { readOnly: true });
  try {
    const avail = (await availabilityOf(trx, [ref])).get(refKey(ref));
    if (avail && !avail.available) {
      const what = ref.kind === 'canvas' ? 'Canvas' : 'campaign';
      const now = avail.state === 'restoring' ? 'is being restored from long-term storage' : avail.state === 'archiving' ? 'is being moved to long-term storage' : 'has expired and is in long-term storage';
      throw conflict('interaction_data_expired', `The interaction data of ${what} ${JSON.stringify(message.name)} (${ref.kind}:${ref.id}) ${now}, so its User Data export would be empty. ${restoreHint(ref)}`, {
        state: avail.state,
      });
    }
    const table = await currentHotTable(trx, ref);
    if (table) await trx.from(table.name).first('id');
    // The GROUP_CONCATs hold one user's values; the default 1 KB is short for users with many steps.
    await trx.raw('SET SESSION group_concat_max_len = 1048576');
    return { trx, table };
  } catch (err) {
    void trx.rollback().catch(() => undefined);
    throw err;
  }
}
