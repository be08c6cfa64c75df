/**
 * InnoDB purges deleted rows' index entries in the background, after the statements that deleted them
 * have returned. A phase measured right after a large delete would pay for that purge too; in the
 * service a restore comes months after the archive it undoes, long after the purge has finished.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Db } from '../../src/db/knex';

/** Committed transactions whose undo logs are not yet purged (InnoDB's history list length). */
export async function purgeBacklog(db: Db): Promise<number> {
  const [rows] = (await db.raw("SELECT `COUNT` AS n FROM information_schema.INNODB_METRICS WHERE NAME = 'trx_rseg_history_len'")) as [
    { n: number }[],
  ];
  return Number(rows[0]?.n ?? 0);
}

/**
 * Waits (up to ten minutes) until purge has caught up completely, so no phase is charged with an
 * earlier one's. The history list counts transactions, not rows: one chunk's delete is one entry of
 * 5,000 rows, so "nearly empty" can still leave hundreds of thousands of rows to purge. An idle
 * server empties it.
 */
export async function settlePurge(db: Db): Promise<void> {
  const deadline = Date.now() + 600_000;
  while (Date.now() < deadline && (await purgeBacklog(db)) > 0) await sleep(500);
}
