/**
 * What each way of taking one message's rows out of the shared hot table costs the database, without
 * the worker or Temporal: chunks of 5,000 rows deleted with `RETURNING` (the rows come back, as the
 * archive needed them), one transaction each, under READ COMMITTED, then put back from a copy before
 * the next statement is measured. The table is a private copy of `interactions` as it was before
 * migration 006 (every message's rows, ix_interactions_message included): since then each message has
 * a table of its own, which the archive drops instead of deleting from. The statements, run in the
 * order given (each may be named twice, to see the spread):
 *
 *   limit  DELETE … WHERE message AND id > ? ORDER BY id LIMIT n RETURNING …   (one statement; the
 *          optimizer picks the index, and for a message with many rows it walks the primary key)
 *   ids    SELECT id … FORCE INDEX (ix_interactions_message) … LIMIT n, then
 *          DELETE … WHERE message AND id IN (…) RETURNING …                     (what the archive did
 *          before migration 006)
 *   range  the n-th id read the same way, then DELETE … WHERE message AND id > ? AND id <= ? RETURNING …
 *
 *   npm run bench:delete-statements                          500,000 rows among 2,500,000; limit,ids,range twice
 *   BENCH_STATEMENTS=ids,limit BENCH_TARGET_ROWS=1000000 BENCH_OTHER_ROWS=5000000 npm run bench:delete-statements
 */
import type { Knex } from 'knex';
import { createBenchDatabase, createSharedTable, generateSharedInteractions, SHARED_TABLE, TARGET } from './lib/dataset';
import { insertBackInChunks, timedPhase, type PhaseFigure } from './lib/moves';
import { fmtInt, uptimeLine } from './lib/proc';
import { envInt, log, saveResults, table } from './lib/report';
import { startBenchServer } from './lib/server';
import type { Db } from '../src/db/knex';
import { INTERACTION_COLUMN_LIST } from '../src/storage/chunkCodec';

const CHUNK = 5_000;

/** Deletes the next chunk after `after`; returns the id to continue after, or null when none is left. */
type Statement = (trx: Knex.Transaction, after: string) => Promise<string | null>;

/** The table the rows leave and come back to. */
const T = SHARED_TABLE;

/** The archive's query for a chunk's ids before migration 006: the message's own index alone. */
const idsThroughIndex = async (trx: Knex.Transaction, after: string) =>
  await trx
    .from(trx.raw('?? FORCE INDEX (ix_interactions_message)', [T]))
    .where({ message_kind: TARGET.kind, message_id: TARGET.id })
    .andWhere('id', '>', after)
    .orderBy('id')
    .limit(CHUNK)
    .pluck<string[]>('id');

async function deleteReturning(trx: Knex.Transaction, sql: string, bindings: readonly (string | number)[]): Promise<number> {
  const [rows] = (await trx.raw(`${sql} RETURNING ${INTERACTION_COLUMN_LIST}`, bindings).options({ rowsAsArray: true })) as unknown as [
    unknown[],
  ];
  return rows.length;
}

const STATEMENTS: Record<string, { label: string; run: Statement }> = {
  limit: {
    label: 'DELETE … ORDER BY id LIMIT n RETURNING (one statement, index chosen by the optimizer)',
    async run(trx, after) {
      const [rows] = (await trx
        .raw(
          `DELETE FROM ${T} WHERE message_kind = ? AND message_id = ? AND id > ? ORDER BY id LIMIT ? RETURNING ${INTERACTION_COLUMN_LIST}`,
          [TARGET.kind, TARGET.id, after, CHUNK],
        )
        .options({ rowsAsArray: true })) as unknown as [(string | null)[][]];
      return rows.length ? String(rows[rows.length - 1][0]) : null;
    },
  },
  ids: {
    label: 'ids from ix_interactions_message, then DELETE … WHERE id IN (…) RETURNING (the archive before migration 006)',
    async run(trx, after) {
      const ids = await idsThroughIndex(trx, after);
      if (ids.length === 0) return null;
      await deleteReturning(
        trx,
        `DELETE FROM ${T} WHERE message_kind = ? AND message_id = ? AND id IN (${ids.map(() => '?').join(', ')})`,
        [TARGET.kind, TARGET.id, ...ids],
      );
      return ids[ids.length - 1];
    },
  },
  range: {
    label: 'last id from ix_interactions_message, then DELETE … WHERE id > ? AND id <= ? RETURNING',
    async run(trx, after) {
      const ids = await idsThroughIndex(trx, after);
      if (ids.length === 0) return null;
      const last = ids[ids.length - 1];
      await deleteReturning(trx, `DELETE FROM ${T} WHERE message_kind = ? AND message_id = ? AND id > ? AND id <= ?`, [
        TARGET.kind,
        TARGET.id,
        after,
        last,
      ]);
      return last;
    },
  },
};

async function deleteAll(db: Db, statement: Statement): Promise<void> {
  let after: string | null = '0';
  while (after !== null) {
    const from: string = after;
    after = await db.transaction((trx) => statement(trx, from), { isolationLevel: 'read committed' });
  }
}

async function main(): Promise<void> {
  const targetRows = envInt('BENCH_TARGET_ROWS', 500_000);
  const otherRows = envInt('BENCH_OTHER_ROWS', 2_500_000);
  const wanted = (process.env.BENCH_STATEMENTS || 'limit,ids,range,limit,ids,range').split(',').map((s) => s.trim());
  const unknown = wanted.filter((s) => !(s in STATEMENTS));
  if (unknown.length) throw new Error(`BENCH_STATEMENTS: unknown ${unknown.join(', ')}; pick from ${Object.keys(STATEMENTS).join(', ')}`);
  const server = await startBenchServer(log);
  const bench = await createBenchDatabase(server.url, 'bench_delete_statements');
  const results: { statement: string; figure: PhaseFigure }[] = [];
  const uptimeBefore = uptimeLine();
  try {
    log(`generating ${fmtInt(targetRows)} rows of ${TARGET.kind}:${TARGET.id} among ${fmtInt(otherRows)} others`);
    await createSharedTable(bench.db, T);
    await generateSharedInteractions(bench.db, T, { targetRows, otherRows }, log);
    await bench.db.raw('CREATE TABLE bench_copy LIKE ??', [T]);
    await bench.db.raw('INSERT INTO bench_copy SELECT * FROM ?? WHERE message_kind = ? AND message_id = ?', [T, TARGET.kind, TARGET.id]);
    for (const name of wanted) {
      const figure = await timedPhase(bench.db, server.pid, () => deleteAll(bench.db, STATEMENTS[name].run));
      const [[{ n }]] = (await bench.db.raw('SELECT COUNT(*) AS n FROM ?? WHERE message_kind = ? AND message_id = ?', [
        T,
        TARGET.kind,
        TARGET.id,
      ])) as [{ n: number }[]];
      if (Number(n) !== 0) throw new Error(`${name} left ${n} rows of the message`);
      log(`${name}: ${figure.seconds.toFixed(1)} s, MariaDB CPU ${figure.dbCpuSeconds?.toFixed(1)} s (purge included)`);
      results.push({ statement: name, figure });
      await insertBackInChunks(bench.db, 'bench_copy', T, CHUNK);
    }
    const markdown = table(
      ['statement', 'delete s', 'MariaDB CPU s (incl. purge)'],
      results.map((r) => [
        `${r.statement}: ${STATEMENTS[r.statement].label}`,
        r.figure.seconds.toFixed(1),
        r.figure.dbCpuSeconds?.toFixed(1) ?? 'n/a',
      ]),
    );
    console.log(
      `\n${fmtInt(targetRows)} rows of one message among ${fmtInt(otherRows)}, chunks of ${CHUNK}, ${server.description}\n\n${markdown}\n`,
    );
    console.log(`Load: before \`${uptimeBefore}\`; after \`${uptimeLine()}\`.`);
    saveResults('delete-statements', { targetRows, otherRows, server: server.description, results, markdown });
  } finally {
    await bench.drop();
    await server.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
