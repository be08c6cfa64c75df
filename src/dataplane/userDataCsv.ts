/**
 * The User Data CSV export of one campaign or Canvas: one line per user who has interaction rows for
 * it, streamed from MySQL to the client with backpressure (constant memory however many users).
 *
 * The availability check and the rows come from one read-only snapshot, so an archive starting while
 * the file streams cannot cut it short: the export is the data as it was when it started. An expired
 * message is refused before the first byte (409 with how to restore), never answered with an empty file.
 *
 * That snapshot holds the message's table (its metadata lock), so the archive's DROP TABLE waits for it.
 * An export therefore has a time limit (`USERS_EXPORT_TIME_LIMIT`): past it, or as soon as its client
 * hangs up, its session ends and the lock goes with it, however slowly the client was reading.
 */
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { stringify, type Options as CsvOptions } from 'csv-stringify';
import type { Knex } from 'knex';
import type { Connection } from 'mysql2';
import { connectionPool, type Db } from '../db/knex';
import type { MessageRef } from '../shared/types';
import { currentHotTable, type HotTable } from '../storage/hotTables';
import { conflict, DataPlaneError, notFound } from './errors';
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

type CsvCell = string | number | boolean | null;

/**
 * RFC 4180: CRLF line ends, and a cell holding a comma, a quote or a line break in quotes. A cell a
 * spreadsheet would run as a formula is prefixed with an apostrophe. csv-stringify quotes a lone CR
 * or LF only when told to once a record delimiter is given.
 */
export const CSV_FORMAT: CsvOptions = {
  record_delimiter: 'windows',
  quote_record_delimiter: true,
  escape_formulas: true,
  cast: { boolean: (value) => String(value) },
};

export function restoreHint(ref: MessageRef): string {
  return (
    `Restore it with POST /v1/messages/${ref.kind}/${ref.id}/restore {"requestedBy": "<your e-mail>"} ` +
    `(or: npx interaction-data restore ${ref.kind}:${ref.id} --requested-by <your e-mail>); ` +
    'you get an e-mail when the data is available again, then export again.'
  );
}

/**
 * Per-user aggregates of one message, in user order; components resolved to the latest one seen. A
 * message's own table holds its rows only, so a scan of it (the plan when every row matches) reads
 * nothing else; a segment's rows are one range of its shared table's primary key.
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

function toCells(message: StoredMessage, r: CsvRow): CsvCell[] {
  const comps = message.kind === 'campaign' ? message.variants : message.variations;
  const comp = r.component_id ? comps.find((c) => c.id === r.component_id) : undefined;
  const converted = r.last_converted !== null;
  const inControl = Number(r.in_control) === 1;
  return message.kind === 'campaign'
    ? [
        r.user_id,
        r.component_id,
        comp?.name ?? null,
        inControl,
        isoTime(r.first_received),
        isoTime(r.last_received),
        Number(r.times_received),
        isoTime(r.last_opened),
        isoTime(r.last_clicked),
        converted,
        isoTime(r.last_converted),
      ]
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
          .map((id) => message.steps.find((s) => s.id === id)?.name ?? id)
          .sort()
          .join('; ') || null,
        isoTime(r.last_opened),
        isoTime(r.last_clicked),
        converted,
        isoTime(r.last_converted),
      ];
}

export interface UserDataExport {
  message: StoredMessage;
  filename: string;
  stream: Readable;
}

export interface UserDataCsvOptions {
  /** How long the export may run, from opening its transaction to handing over its last line. */
  timeLimitMs: number;
}

/**
 * The export ran past its time limit and was stopped. Before the first byte the client gets this as a
 * 503; after it, the headers are gone, so the connection is closed mid-file (a chunked response without
 * its last chunk), which every HTTP client reports as a truncated download.
 */
export class ExportTimeLimitError extends DataPlaneError {
  override name = 'ExportTimeLimitError';
  constructor(ref: MessageRef, limitMs: number) {
    super(
      503,
      'export_time_limit',
      `The User Data export of ${ref.kind}:${ref.id} ran longer than its time limit of ${limitMs / 1000} s (USERS_EXPORT_TIME_LIMIT) and was stopped; ` +
        'read the file faster, or ask for a longer limit.',
    );
  }
}

/**
 * The export's own pooled connection and read-only transaction. Ended normally, the transaction
 * commits and the connection goes back to the pool. Cut short, the connection is closed instead: a
 * result set still streaming to a paused socket would have to be read to its end before a ROLLBACK
 * could even be sent, while closing the socket ends the session, its transaction and its metadata lock
 * on the server at once. The pool drops the closed connection and opens another when it needs one.
 */
class ExportSession {
  private ended = false;

  private constructor(
    private readonly db: Db,
    private readonly conn: Connection,
    readonly trx: Knex.Transaction,
  ) {}

  static async open(db: Db): Promise<ExportSession> {
    const conn = await connectionPool(db).acquireConnection();
    try {
      return new ExportSession(db, conn, await db.transaction(undefined, { readOnly: true, connection: conn }));
    } catch (err) {
      closeSocket(conn);
      await connectionPool(db).releaseConnection(conn);
      throw err;
    }
  }

  /** Commits or rolls back, then gives the connection back as it found it; closed when that fails. */
  async end(commit: boolean): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    try {
      await (commit ? this.trx.commit() : this.trx.rollback());
      await this.db.raw('SET SESSION group_concat_max_len = DEFAULT').connection(this.conn);
    } catch {
      closeSocket(this.conn);
    }
    await connectionPool(this.db).releaseConnection(this.conn);
  }

  /** Ends the session at once, whatever it is doing. */
  abort(): void {
    if (this.ended) return;
    this.ended = true;
    closeSocket(this.conn);
    void connectionPool(this.db)
      .releaseConnection(this.conn)
      .catch(() => undefined);
  }
}

/**
 * mysql2's destroy() only half-closes the socket (FIN), and a server blocked writing rows to a reader
 * that stopped reading goes on waiting for net_write_timeout. Destroying the socket as well, with
 * unread rows in it, resets the connection, which the server notices at once.
 */
function closeSocket(conn: Connection): void {
  conn.destroy();
  (conn as unknown as { stream?: { destroy(): void } }).stream?.destroy();
}

/**
 * Opens the export: refuses unknown (404) and unavailable (409) messages before anything is sent,
 * then returns the stream, which owns a read-only transaction until its rows are read or it is
 * destroyed. The time limit runs from the transaction's start; when it passes, the stream is destroyed
 * with an ExportTimeLimitError (or, before the stream exists, the open fails with it).
 */
export async function openUserDataCsv(db: Db, ref: MessageRef, opts: UserDataCsvOptions): Promise<UserDataExport> {
  const message = await loadMessage(db, ref);
  if (!message) throw notFound(`no ${ref.kind} ${JSON.stringify(ref.id)}`);
  const overdue = () => new ExportTimeLimitError(ref, opts.timeLimitMs);
  // The sessions of the attempts to open; a statement in flight on an aborted session never answers,
  // so opening races the time limit rather than waiting for that answer.
  const sessions: ExportSession[] = [];
  let overTime = false;
  let failOpening: (err: Error) => void = () => undefined;
  const limitReached = new Promise<never>((_, reject) => (failOpening = reject));
  let onTimeLimit = () => {
    overTime = true;
    for (const s of sessions) s.abort();
    failOpening(overdue());
  };
  const timer = setTimeout(() => onTimeLimit(), opts.timeLimitMs);
  const track = (s: ExportSession) => {
    sessions.push(s);
    if (overTime) s.abort();
  };
  let opened: ExportSession;
  let table: HotTable | null;
  try {
    ({ session: opened, table } = await Promise.race([rereadIfTableMoved(() => openSnapshot(db, ref, message, track)), limitReached]));
  } catch (err) {
    clearTimeout(timer);
    throw err;
  }

  const columns = ref.kind === 'campaign' ? CAMPAIGN_CSV_COLUMNS : CANVAS_CSV_COLUMNS;
  // A message without a table never had a row: the file is its header.
  const source = table ? (userDataRowsQuery(opened.trx, table, ref).stream({ highWaterMark: 500 }) as Readable) : Readable.from([]);
  const cells = new Transform({
    objectMode: true,
    transform: (row: CsvRow, _enc, done: TransformCallback) => done(null, toCells(message, row)),
  });
  const csv = stringify({ ...CSV_FORMAT, header: true, columns: [...columns] });
  onTimeLimit = () => csv.destroy(overdue());
  source.on('error', (err) => csv.destroy(err));
  // Every row read: the database is done with, whatever the client still has to receive.
  source.on('end', () => void opened.end(true));
  source.pipe(cells).pipe(csv);
  csv.on('close', () => {
    clearTimeout(timer);
    if (!csv.readableEnded) {
      source.destroy();
      cells.destroy();
      opened.abort();
    }
  });
  return { message, filename: `${ref.kind}-${ref.id}-user-data.csv`, stream: csv };
}

/**
 * The export's read-only transaction, once the message is known to be available in it, with the
 * message's table as of the same snapshot. The table is read once here: from then on an archive cannot
 * drop it before the transaction ends, and one that dropped it already fails this before anything is
 * sent, so the caller opens the export again and finds the message unavailable. `opened` hears of the
 * session as soon as it exists, so that a time limit passing meanwhile can end it.
 */
async function openSnapshot(
  db: Db,
  ref: MessageRef,
  message: StoredMessage,
  opened: (s: ExportSession) => void,
): Promise<{ session: ExportSession; table: HotTable | null }> {
  const session = await ExportSession.open(db);
  opened(session);
  const { trx } = session;
  try {
    const avail = (await availabilityOf(trx, [ref])).get(refKey(ref));
    if (avail && !avail.available) {
      const what = ref.kind === 'canvas' ? 'Canvas' : 'campaign';
      const now =
        avail.state === 'restoring'
          ? 'is being restored from long-term storage'
          : avail.state === 'archiving'
            ? 'is being moved to long-term storage'
            : 'has expired and is in long-term storage';
      throw conflict(
        'interaction_data_expired',
        `The interaction data of ${what} ${JSON.stringify(message.name)} (${ref.kind}:${ref.id}) ${now}, so its User Data export would be empty. ${restoreHint(ref)}`,
        {
          state: avail.state,
        },
      );
    }
    const table = await currentHotTable(trx, ref);
    if (table) await trx.from(table.name).where({ message_kind: ref.kind, message_id: ref.id }).first('id');
    // The GROUP_CONCATs hold one user's values; the default 1 KB is short for users with many steps.
    await trx.raw('SET SESSION group_concat_max_len = 1048576');
    return { session, table };
  } catch (err) {
    await session.end(false);
    throw err;
  }
}
