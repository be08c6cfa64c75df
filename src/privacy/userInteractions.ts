/**
 * A user's interaction rows, hot and archived alike, without restoring anything: what a data subject
 * access request (GDPR Art. 15) hands over.
 *
 * The user's messages come from `user_messages` (one row per user and message with interaction rows,
 * written at ingestion and kept through every move). For each message, the rows come from its hot
 * tables (read for the user's id) and from its archived chunks, reading only the chunks whose user
 * filter (src/archive/userFilter.ts) says they may hold the user. Rows move between the two while an
 * archive or a restore runs; a message is read again whenever its tables or generations changed
 * during the read, and rows are kept once per id, so none is missed or given twice.
 */
import type { Db } from '../db/knex';
import type { ArchiveStores, ChunkRecord } from '../archive/store';
import { mayHoldUser } from '../archive/userFilter';
import type { MessageRef } from '../shared/types';
import { ChunkIntegrityError, compareIds, INTERACTION_COLUMNS, type InteractionRow, type RowArray } from '../storage/chunkCodec';
import { messageHotTables } from '../storage/hotTables';
import { sqlErrno } from '../dataplane/sql';

const ER_NO_SUCH_TABLE = 1146;
/** Reads of one message before its rows are given as the union of every read (a message moving without pause). */
const READS_PER_MESSAGE = 5;
/** Messages read at once. */
const MESSAGES_AT_ONCE = 16;

export interface UserInteraction {
  /** `hot`: in the hot store; `archived`: in long-term storage, not restored. */
  source: 'hot' | 'archived';
  /** The archived generation holding the row; null for hot rows. */
  generation: number | null;
  row: InteractionRow;
}

/** What answering took, for the access log and the benchmark. */
export interface UserAccessStats {
  messages: number;
  hotTablesRead: number;
  /** Archived chunks of the user's messages, and of those the ones read (their filter may hold the user). */
  chunksConsidered: number;
  chunksRead: number;
  rows: number;
}

export const emptyAccessStats = (): UserAccessStats => ({ messages: 0, hotTablesRead: 0, chunksConsidered: 0, chunksRead: 0, rows: 0 });

/** The user's messages, in a stable order. */
async function userMessages(db: Db, userId: string): Promise<MessageRef[]> {
  const rows = await db('user_messages')
    .where({ user_id: userId })
    .orderBy(['message_kind', 'message_id'])
    .select<{ message_kind: MessageRef['kind']; message_id: string }[]>('message_kind', 'message_id');
  return rows.map((r) => ({ kind: r.message_kind, id: r.message_id }));
}

/**
 * Throws StoreNotConfiguredError (naming the store and its settings) when a chunk of the user's
 * messages is in a store this process cannot read: checked before anything is sent, so a caller gets
 * an error rather than a cut-off export.
 */
export async function assertUserStoresReadable(db: Db, stores: ArchiveStores, userId: string): Promise<void> {
  const used = await db('archive_chunks as c')
    .join('user_messages as um', (j) => j.on('um.message_kind', 'c.message_kind').andOn('um.message_id', 'c.message_id'))
    .where('um.user_id', userId)
    .distinct('c.store')
    .pluck<string[]>('c.store');
  for (const name of used) stores.get(name);
}

/** What moves change: the message's tables and their roles, its generations, their states and chunks. */
async function placement(db: Db, ref: MessageRef): Promise<string> {
  const where = { message_kind: ref.kind, message_id: ref.id };
  const [tables, generations] = await Promise.all([
    db('hot_tables').where(where).orderBy('table_no').select('table_no', 'role'),
    db('archive_chunks')
      .where(where)
      .whereNotNull('verified_at')
      .groupBy('generation')
      .orderBy('generation')
      .select('generation', db.raw('COUNT(*) AS chunks'), db.raw('MAX(seq) AS last_seq')),
  ]);
  return JSON.stringify([tables, generations]);
}

interface MessageRead {
  rows: Map<string, UserInteraction>;
  /** False when a table or chunk went away during the read: the message moved. */
  complete: boolean;
}

async function readMessage(
  db: Db,
  stores: ArchiveStores,
  ref: MessageRef,
  userId: string,
  stats: UserAccessStats,
  into: MessageRead,
): Promise<void> {
  const where = { message_kind: ref.kind, message_id: ref.id };
  const chunks = await db('archive_chunks')
    .where(where)
    .whereNotNull('verified_at')
    .orderBy(['generation', 'seq'])
    .select<(ChunkRecord & { generation: number; user_filter: Buffer | null })[]>(
      'generation',
      'seq',
      'checksum',
      'row_count',
      'store',
      'object_key',
      'user_filter',
    );
  for (const chunk of chunks) {
    stats.chunksConsidered += 1;
    if (!mayHoldUser(chunk.user_filter, userId)) continue;
    stats.chunksRead += 1;
    let rows: RowArray[];
    try {
      rows = await stores.get(chunk.store).readUserRows(db, { ...where, generation: chunk.generation }, chunk, userId);
    } catch (err) {
      // A restore removes a generation's chunks once its rows are hot again: read the message again.
      if (err instanceof ChunkIntegrityError) {
        into.complete = false;
        continue;
      }
      throw err;
    }
    for (const values of rows) {
      const row = Object.fromEntries(INTERACTION_COLUMNS.map((c, ci) => [c, values[ci]])) as InteractionRow;
      into.rows.set(row.id as string, { source: 'archived', generation: Number(chunk.generation), row });
    }
  }
  for (const table of await messageHotTables(db, ref)) {
    stats.hotTablesRead += 1;
    let rows: InteractionRow[];
    try {
      rows = await db(table.name)
        .where({ ...where, user_id: userId })
        .orderBy('id')
        .select<InteractionRow[]>(INTERACTION_COLUMNS);
    } catch (err) {
      // Dropped by an archive once its rows were in chunks: read the message again.
      if (sqlErrno(err) === ER_NO_SUCH_TABLE) {
        into.complete = false;
        continue;
      }
      throw err;
    }
    // A row both hot and archived is being restored: it is hot from now on.
    for (const row of rows) into.rows.set(row.id as string, { source: 'hot', generation: null, row });
  }
}

/** A message's rows of the user: a read during which nothing moved has every row; failing that, every row seen by any read. */
async function messageRows(
  db: Db,
  stores: ArchiveStores,
  ref: MessageRef,
  userId: string,
  stats: UserAccessStats,
): Promise<UserInteraction[]> {
  const seen = new Map<string, UserInteraction>();
  let found: Map<string, UserInteraction> = seen;
  for (let attempt = 1; attempt <= READS_PER_MESSAGE; attempt++) {
    const before = await placement(db, ref);
    const read: MessageRead = { rows: new Map(), complete: true };
    await readMessage(db, stores, ref, userId, stats, read);
    for (const [id, row] of read.rows) seen.set(id, row);
    if (read.complete && (await placement(db, ref)) === before) {
      found = read.rows;
      break;
    }
  }
  return [...found.values()].sort((a, b) => compareIds(a.row.id as string, b.row.id as string));
}

/**
 * Every interaction row of the user, message by message (ordered by kind and id), each message's rows
 * in id order. Several messages are read at once, so that fetching one chunk overlaps checking another
 * (on the codec's threads); they are given in order. `stats` is filled in as it goes.
 */
export async function* userInteractions(
  db: Db,
  stores: ArchiveStores,
  userId: string,
  stats: UserAccessStats = emptyAccessStats(),
): AsyncGenerator<UserInteraction> {
  const refs = await userMessages(db, userId);
  stats.messages = refs.length;
  for (let at = 0; at < refs.length; at += MESSAGES_AT_ONCE) {
    const reads = refs.slice(at, at + MESSAGES_AT_ONCE).map((ref) => messageRows(db, stores, ref, userId, stats));
    // Each is awaited below, in order; one that fails is not left unhandled meanwhile.
    for (const read of reads) read.catch(() => undefined);
    for (const read of reads) {
      const rows = await read;
      stats.rows += rows.length;
      yield* rows;
    }
  }
}
