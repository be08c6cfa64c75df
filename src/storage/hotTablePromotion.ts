/**
 * A message whose segment of a shared hot table has grown to HOT_TABLE_OWN_FROM_ROWS rows moves to a
 * table of its own, once (src/storage/hotTables.ts explains the layout).
 *
 * The move is one transaction: with the message's current entry locked for update (ingestion writing
 * through it waits, as it waits for the archive's swap), its rows are copied into its pending table
 * with their ids, deleted from the shared table, and the pending table becomes current. A crash rolls
 * all of it back; the pending table stays for the next look.
 *
 * It does not move a message whose rows a restore or an erasure is working on:
 * - a restore under way (`restoring`) inserts into the segment it found when it began; it asks for its
 *   own move itself, before its first row (`duringRestore`);
 * - an erasure not yet done in the message has read where its rows are.
 * The message's fence row is locked first, as the archive's and restore's steps lock it, so a restore
 * cannot begin in between.
 */
import type { Db } from '../db/knex';
import type { MessageRef } from '../shared/types';
import { hotTableOwnFromRows } from '../config';
import { retryOnDeadlock } from './deadlock';
import { findRole, preparePending, type HotTable } from './hotTables';
import { deleteErasedHotRows, unfinishedErasuresOf } from '../privacy/erasureRecords';

export type PromotionOutcome = 'promoted' | 'not-shared' | 'busy';

export interface PromotionOptions {
  /** The restore holding the message's fence moves its segment before inserting into it. */
  duringRestore?: boolean;
}

/** Moves the message's current segment to a table of its own; what happened instead when it did not. */
export async function promoteSegment(db: Db, ref: MessageRef, opts: PromotionOptions = {}): Promise<PromotionOutcome> {
  const seen = await findRole(db, ref, 'current');
  if (!seen?.shared) return 'not-shared';
  // Made outside the transaction: DDL would commit it.
  const own = await retryOnDeadlock(() => preparePending(db, ref));
  if (!own) return 'not-shared';
  const message = { message_kind: ref.kind, message_id: ref.id };
  // READ COMMITTED: the copy and the delete lock the segment's rows, not the gaps beside them where
  // ingestion inserts other messages' rows. Nothing else writes the segment while its entry is locked.
  return retryOnDeadlock(() =>
    db.transaction(
      async (trx): Promise<PromotionOutcome> => {
        if (await trx('move_fences').where(message).first('generation'))
          await trx('move_fences').where(message).forUpdate().first('generation');
        if (!opts.duringRestore) {
          const restoring = await trx('archive_manifests')
            .where(message)
            .andWhere({ status: 'restoring' })
            .forShare()
            .first<{ generation: number } | undefined>('generation');
          if (restoring) return 'busy';
        }
        const erasing = await trx('erasure_messages')
          .where(message)
          .andWhere({ status: 'pending' })
          .forShare()
          .first<{ request_id: string } | undefined>('request_id');
        if (erasing) return 'busy';
        const current = await findRole(trx, ref, 'current', 'update');
        if (!current?.shared) return 'not-shared';
        // Every column, in the template's order, which both tables share (src/storage/hotTableSchema.ts
        // changes the shared tables too): a column one of them lacked would fail this, not lose data.
        await trx.raw('INSERT INTO ?? SELECT * FROM ?? WHERE message_kind = ? AND message_id = ?', [
          own.name,
          current.name,
          ref.kind,
          ref.id,
        ]);
        await trx.raw('DELETE FROM ?? WHERE message_kind = ? AND message_id = ?', [current.name, ref.kind, ref.id]);
        // A user whose erasure failed in this message stays erased wherever the rows go.
        for (const u of await unfinishedErasuresOf(trx, ref)) await deleteErasedHotRows(trx, own.name, ref, u.userId, u.erasedThrough);
        await trx('hot_tables').where({ table_no: current.entryNo }).delete();
        await trx('hot_tables').where({ table_no: own.entryNo, role: 'pending' }).update({ role: 'current' });
        return 'promoted';
      },
      { isolationLevel: 'read committed' },
    ),
  );
}

/** Whether the segment holds at least `rows` rows, counting no further than that. */
async function segmentHolds(db: Db, ref: MessageRef, segment: HotTable, rows: number): Promise<boolean> {
  const [[row]] = (await db.raw('SELECT COUNT(*) AS n FROM (SELECT 1 FROM ?? WHERE message_kind = ? AND message_id = ? LIMIT ?) AS r', [
    segment.name,
    ref.kind,
    ref.id,
    rows,
  ])) as [{ n: number | string }[]];
  return Number(row.n) >= rows;
}

/** Rows this process wrote into each message's segment since it last counted them. */
const writtenSinceCount = new Map<string, number>();
/** Bounds the map: forgetting a message only delays its next count. */
const MAX_COUNTED_MESSAGES = 100_000;

export interface SegmentWrites {
  ref: MessageRef;
  segment: HotTable;
  rows: number;
}

/**
 * After ingestion committed rows into a segment: once this process has written a quarter of the
 * threshold into the message's segment since it last counted, the segment is counted, and moved when
 * it has reached the threshold. Counting every batch would read up to the threshold's rows each time.
 */
export async function promoteIfGrown(db: Db, { ref, segment, rows }: SegmentWrites, ownFrom = hotTableOwnFromRows()): Promise<void> {
  if (ownFrom === 0) return;
  const step = Math.max(1, Math.floor(ownFrom / 4));
  const key = `${ref.kind}\u0000${ref.id}`;
  const since = (writtenSinceCount.get(key) ?? 0) + rows;
  writtenSinceCount.delete(key);
  if (since < step) {
    if (writtenSinceCount.size >= MAX_COUNTED_MESSAGES) writtenSinceCount.clear();
    writtenSinceCount.set(key, since);
    return;
  }
  // Busy (a restore or an erasure): counted again after the next quarter of the threshold.
  if (await segmentHolds(db, ref, segment, ownFrom)) await promoteSegment(db, ref);
}
