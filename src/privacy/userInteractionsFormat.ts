/**
 * A user's interaction rows (src/privacy/userInteractions.ts) as the access export sends them: one
 * JSON object per line, or CSV in the User Data export's dialect (RFC 4180, formulas escaped).
 * Times are ISO 8601 in UTC; every other value is as stored.
 */
import { Readable } from 'node:stream';
import { stringify } from 'csv-stringify';
import { CSV_FORMAT } from '../dataplane/userDataCsv';
import { isoTime } from '../dataplane/sql';
import { INTERACTION_COLUMNS } from '../storage/chunkCodec';
import type { UserInteraction } from './userInteractions';

export type UserInteractionsFormat = 'ndjson' | 'csv';

/** The columns of each line, in order: where the row is kept, then the row's own columns. */
export const USER_INTERACTION_FIELDS = ['source', 'generation', ...INTERACTION_COLUMNS] as const;

function record(item: UserInteraction): Record<(typeof USER_INTERACTION_FIELDS)[number], string | number | null> {
  return { source: item.source, generation: item.generation, ...item.row, occurred_at: isoTime(item.row.occurred_at) };
}

export function userInteractionsStream(rows: AsyncIterable<UserInteraction>, format: UserInteractionsFormat): Readable {
  if (format === 'ndjson') {
    return Readable.from(
      (async function* () {
        for await (const item of rows) yield `${JSON.stringify(record(item))}\n`;
      })(),
    );
  }
  const csv = stringify({ ...CSV_FORMAT, header: true, columns: [...USER_INTERACTION_FIELDS] });
  const source = Readable.from(
    (async function* () {
      for await (const item of rows) yield record(item);
    })(),
  );
  source.on('error', (err) => csv.destroy(err));
  return source.pipe(csv);
}
