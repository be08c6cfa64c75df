/**
 * Pieces shared by the benchmarks that move one message's rows inside the database alone (no worker,
 * no Temporal), on tables of their own: a phase timed with the MariaDB CPU it cost, purge included,
 * and the rows put back from a copy between phases.
 */
import type { Db } from '../../src/db/knex';
import { INTERACTION_COLUMNS } from '../../src/storage/chunkCodec';
import { cpuSeconds } from './proc';
import { settlePurge } from './purge';

export interface PhaseFigure {
  seconds: number;
  dbCpuSeconds: number | null;
}

export async function timedPhase(db: Db, pid: number | null, work: () => Promise<void>): Promise<PhaseFigure> {
  await settlePurge(db);
  const cpu0 = pid ? cpuSeconds(pid) : null;
  const t0 = Date.now();
  await work();
  const seconds = (Date.now() - t0) / 1000;
  // The purge of what the phase deleted is part of its cost: wait for it and count its CPU too.
  await settlePurge(db);
  return { seconds, dbCpuSeconds: pid && cpu0 !== null ? cpuSeconds(pid) - cpu0 : null };
}

/** Inserts the rows of `copy` back into `into`, `chunk` rows per statement, in id order. */
export async function insertBackInChunks(db: Db, copy: string, into: string, chunk: number, extraColumns: string[] = []): Promise<void> {
  const cols = [...INTERACTION_COLUMNS, ...extraColumns].join(', ');
  let after = '0';
  for (;;) {
    const [rows] = (await db.raw('SELECT MAX(id) AS m FROM (SELECT id FROM ?? WHERE id > ? ORDER BY id LIMIT ?) x', [
      copy,
      after,
      chunk,
    ])) as [{ m: string | null }[]];
    const last = rows[0]?.m;
    if (!last) return;
    await db.raw(`INSERT INTO ?? (${cols}) SELECT ${cols} FROM ?? WHERE id > ? AND id <= ? ORDER BY id`, [into, copy, after, last]);
    after = String(last);
  }
}
