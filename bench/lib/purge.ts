/**
 * InnoDB purges deleted rows' index entries in the background, after the statements that deleted them
 * have returned. A phase measured right after a large delete would pay for that purge too; in the
 * service a restore comes months after the archive it undoes, long after the purge has finished.
 */
import type { Db } from '../../src/db/knex';

/** Undo log records not yet purged (InnoDB's history list length). */
export async function purgeBacklog(db: Db): Promise<number> {
  const [rows] = (await db.raw("SELECT `COUNT` AS n FROM information_schema.INNODB_METRICS WHERE NAME = 'trx_rseg_history_len'")) as [{ n: number }[]];
  return Number(rows[0]?.n ?? 0);
}

/** Waits (up to ten minutes) until purge has caught up, so no phase is charged with an earlier one's. */
export async function settlePurge(db: Db): Promise<void> {
  const deadline = Date.now() + 600_000;
  while (Date.now() < deadline && (await purgeBacklog(db)) > 100) await new Promise((r) => setTimeout(r, 500));
}
