/**
 * What the layout of the shared hot table costs a move, measured in the database alone (no worker, no
 * Temporal): one message's rows deleted in chunks of 5,000 by id and inserted back in chunks of 5,000,
 * first with the table as the migrations made it before 006 moved every message into a table of its
 * own (clustered by `id`, the message's rows spread over the whole table; a private copy,
 * `shared_interactions`, as `interactions` is now an empty template), then with the same table
 * clustered by message (`PRIMARY KEY (message_kind, message_id, id)`, `UNIQUE (id)` for the
 * auto-increment, `ix_interactions_message` then redundant).
 * Other layouts keep the keys and change how the identifier columns compare: byte for byte (`bin`,
 * `ascii`) instead of the migrations' case-insensitive utf8mb4_unicode_ci, and back (`ci`).
 * Both runs use the same rows; purge is let finish before each phase is timed.
 *
 *   npm run bench:clustering                      1,000,000 rows among 5,000,000
 *   BENCH_TARGET_ROWS=200000 BENCH_OTHER_ROWS=1000000 npm run bench:clustering
 *   BENCH_LAYOUTS=id npm run bench:clustering     the shared layout only (the database's share of a move before 006)
 *   BENCH_LAYOUTS=id,bin,ci npm run bench:clustering   what the identifiers' collation costs (ascii: ASCII
 *                                                  columns), measured again on the rebuilt table at the end
 *   BENCH_LAYOUTS=id,four,five npm run bench:clustering what the archive's own index costs every move
 *   BENCH_LAYOUTS=id,event,noevent npm run bench:clustering   what the unique event-id key cost (dropped in migration 004)
 *   BENCH_LAYOUTS=id,user,nouser npm run bench:clustering   what the per-user index cost (dropped in migration 005)
 *   BENCH_LAYOUTS=id,noreads,reads npm run bench:clustering   what the read index costs every move
 *   BENCH_ORDER=reads BENCH_LAYOUTS=id,noreads npm run bench:clustering   rows moved in the read index's
 *                                                  order instead of by id
 *   BENCH_LAYOUTS=id,msgno,msgnoid npm run bench:clustering  clustered by a 4-byte message number,
 *                                                  `PRIMARY KEY (message_no, id)`, ids without (msgno) and with
 *                                                  (msgnoid) the index AUTO_INCREMENT needs, and with no
 *                                                  secondary index at all (bare, after msgnoid)
 */
import { createBenchDatabase, createSharedTable, generateSharedInteractions, SHARED_TABLE, TARGET } from './lib/dataset';
import { INTERACTION_COLUMNS } from '../src/storage/chunkCodec';
import { fmtInt } from './lib/proc';
import { envInt, log, saveResults, table } from './lib/report';
import { insertBackInChunks, timedPhase, type PhaseFigure } from './lib/moves';
import { startBenchServer } from './lib/server';
import type { Db } from '../src/db/knex';

const CHUNK = 5_000;

/** The table every layout is made of and measured on. */
const T = SHARED_TABLE;

const ASCII = 'CHARACTER SET ascii COLLATE ascii_bin';
const BINARY_COLUMNS: [string, string][] = [
  ['event_id', `VARCHAR(64) ${ASCII} NOT NULL`],
  ['message_kind', `VARCHAR(16) ${ASCII} NOT NULL`],
  ['message_id', `VARCHAR(64) ${ASCII} NOT NULL`],
  ['user_id', 'VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL'],
  ['event_type', `VARCHAR(32) ${ASCII} NOT NULL`],
  ['variant_id', `VARCHAR(64) ${ASCII} NULL`],
  ['step_id', `VARCHAR(64) ${ASCII} NULL`],
  ['variation_id', `VARCHAR(64) ${ASCII} NULL`],
  ['channel', `VARCHAR(32) ${ASCII} NULL`],
];

/**
 * Layouts from `msgno` on name a message by a number of its own: every message gets one, the rows carry
 * it, and the table is clustered by it, so that a message's rows are contiguous behind a 12-byte key.
 */
const MESSAGE_NUMBERS = [
  // CREATE … SELECT copies the identifier columns' types and collation, so the joins below compare like with like.
  `CREATE TABLE bench_message_numbers (no INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, UNIQUE KEY (message_kind, message_id)) SELECT DISTINCT message_kind, message_id FROM ${T}`,
  `ALTER TABLE ${T} ADD COLUMN message_no INT UNSIGNED NOT NULL DEFAULT 0`,
  `UPDATE ${T} i JOIN bench_message_numbers n ON n.message_kind = i.message_kind AND n.message_id = i.message_id SET i.message_no = n.no`,
  'ALTER TABLE bench_copy ADD COLUMN message_no INT UNSIGNED NOT NULL DEFAULT 0',
  'UPDATE bench_copy i JOIN bench_message_numbers n ON n.message_kind = i.message_kind AND n.message_id = i.message_id SET i.message_no = n.no',
  `ALTER TABLE ${T} MODIFY id BIGINT UNSIGNED NOT NULL, DROP PRIMARY KEY, ADD PRIMARY KEY (message_no, id), DROP INDEX ix_interactions_message`,
];

/** The target's message number, once a layout has given the table one. */
let targetNo: number | null = null;

/**
 * The order rows leave and come back in. `id` (default) is the archive's; `reads` is the order of
 * ix_interactions_reads (event type, user, time), in which each chunk's entries in that index are
 * contiguous and its rows scattered over the clustered index instead.
 */
const ORDER = process.env.BENCH_ORDER === 'reads' ? 'reads' : 'id';

async function deleteInChunks(db: Db): Promise<void> {
  let after = '0';
  for (;;) {
    // The copy holds exactly the message's rows: their ids are read from it by primary key, so that
    // finding them costs the same whatever indexes the layout gives the table.
    const ids =
      ORDER === 'id'
        ? ((await db('bench_copy').andWhere('id', '>', after).orderBy('id').limit(CHUNK).pluck('id')) as string[])
        : ((await db('bench_order').andWhere('n', '>', after).orderBy('n').limit(CHUNK).pluck('id')) as string[]);
    if (ids.length === 0) return;
    if (ORDER === 'reads') after = String(Number(after) + ids.length);
    // Once the table is clustered by message number, the rows are found by it and their ids.
    const [message, key] =
      targetNo === null ? ['message_kind = ? AND message_id = ?', [TARGET.kind, TARGET.id]] : ['message_no = ?', [targetNo]];
    await db.transaction(async (trx) => {
      await trx.raw(`DELETE FROM ${T} WHERE ${message} AND id IN (${ids.map(() => '?').join(', ')})`, [...key, ...ids]);
    });
    if (ORDER === 'id') after = ids[ids.length - 1];
  }
}

/** Inserts the copy's rows back in bench_order's order, CHUNK per statement. */
async function insertBackInReadsOrder(db: Db, extraColumns: string[]): Promise<void> {
  const cols = [...INTERACTION_COLUMNS, ...extraColumns];
  const [[{ n }]] = (await db.raw('SELECT COUNT(*) AS n FROM bench_order')) as [{ n: number }[]];
  for (let from = 0; from < Number(n); from += CHUNK) {
    await db.raw(
      `INSERT INTO ${T} (${cols.join(', ')}) SELECT ${cols.map((c) => `c.${c}`).join(', ')} FROM bench_order o JOIN bench_copy c ON c.id = o.id WHERE o.n > ? AND o.n <= ? ORDER BY o.n`,
      [from, from + CHUNK],
    );
  }
}

async function main(): Promise<void> {
  const targetRows = envInt('BENCH_TARGET_ROWS', 1_000_000);
  const otherRows = envInt('BENCH_OTHER_ROWS', 5_000_000);
  const server = await startBenchServer(log);
  const bench = await createBenchDatabase(server.url, 'bench_clustering');
  const results: Record<string, { delete: PhaseFigure; insert: PhaseFigure }> = {};
  try {
    log(`generating ${fmtInt(targetRows)} rows of ${TARGET.kind}:${TARGET.id} among ${fmtInt(otherRows)} others`);
    await createSharedTable(bench.db, T);
    await generateSharedInteractions(bench.db, T, { targetRows, otherRows }, log);
    await bench.db.raw(`CREATE TABLE bench_copy LIKE ${T}`);
    await bench.db.raw(`INSERT INTO bench_copy SELECT * FROM ${T} WHERE message_kind = ? AND message_id = ?`, [TARGET.kind, TARGET.id]);
    if (ORDER === 'reads') {
      log('rows leave and come back in the order of ix_interactions_reads (BENCH_ORDER=reads)');
      await bench.db.raw('CREATE TABLE bench_order (n INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, id BIGINT UNSIGNED NOT NULL)');
      await bench.db.raw('INSERT INTO bench_order (id) SELECT id FROM bench_copy ORDER BY event_type, user_id, occurred_at, id');
    }

    const all: [string, string, string | string[] | null][] = [
      ['id', 'clustered by id (the migrations before 006)', null],
      [
        'message',
        'clustered by message',
        `ALTER TABLE ${T} DROP PRIMARY KEY, ADD PRIMARY KEY (message_kind, message_id, id), ADD UNIQUE INDEX ux_interactions_id (id), DROP INDEX ix_interactions_message`,
      ],
      [
        'ascii',
        'clustered by id, identifiers compared byte for byte (ascii_bin; utf8mb4_bin for user_id)',
        `ALTER TABLE ${T} ${BINARY_COLUMNS.map(([c, type]) => `MODIFY \`${c}\` ${type}`).join(', ')}`,
      ],
      [
        'bin',
        'clustered by id, identifiers compared byte for byte (utf8mb4_bin)',
        `ALTER TABLE ${T} ${BINARY_COLUMNS.map(([c, type]) => `MODIFY \`${c}\` ${type.replace(/CHARACTER SET ascii COLLATE ascii_bin/, 'CHARACTER SET utf8mb4 COLLATE utf8mb4_bin')}`).join(', ')}`,
      ],
      [
        'four',
        "clustered by id, without ix_interactions_message (the archive's own index before migration 006)",
        `ALTER TABLE ${T} DROP INDEX ix_interactions_message`,
      ],
      [
        'five',
        'clustered by id, ix_interactions_message added back (after a rebuild)',
        `ALTER TABLE ${T} ADD INDEX ix_interactions_message (message_kind, message_id, id)`,
      ],
      [
        'event',
        'clustered by id, with the unique ux_interactions_event_id (the migrations before 004)',
        `ALTER TABLE ${T} ADD UNIQUE INDEX ux_interactions_event_id (event_id)`,
      ],
      [
        'noevent',
        'clustered by id, ux_interactions_event_id dropped again (the ledger alone keeps event ids unique, as from migration 004)',
        `ALTER TABLE ${T} DROP INDEX ux_interactions_event_id`,
      ],
      [
        'user',
        'clustered by id, with ix_interactions_user (the migrations before 005)',
        `ALTER TABLE ${T} ADD INDEX ix_interactions_user (user_id)`,
      ],
      [
        'nouser',
        "clustered by id, ix_interactions_user dropped again (user_messages names each user's messages, as from migration 005)",
        `ALTER TABLE ${T} DROP INDEX ix_interactions_user`,
      ],
      [
        'noreads',
        "clustered by id, without ix_interactions_reads (the filters' and profiles' index)",
        `ALTER TABLE ${T} DROP INDEX ix_interactions_reads`,
      ],
      [
        'reads',
        'clustered by id, ix_interactions_reads added back (after a rebuild)',
        `ALTER TABLE ${T} ADD INDEX ix_interactions_reads (message_kind, message_id, event_type, user_id, occurred_at)`,
      ],
      [
        'msgno',
        'clustered by message number, PRIMARY KEY (message_no, id), no index on id alone (ids handed out by the application)',
        MESSAGE_NUMBERS,
      ],
      [
        'msgnoid',
        'clustered by message number, with the index on id that AUTO_INCREMENT needs',
        `ALTER TABLE ${T} MODIFY id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT, ADD INDEX ix_interactions_id (id)`,
      ],
      [
        'bare',
        'clustered by message number, no secondary index at all (the floor: no reads could use the table)',
        `ALTER TABLE ${T} MODIFY id BIGINT UNSIGNED NOT NULL, DROP INDEX ix_interactions_id, DROP INDEX ix_interactions_reads`,
      ],
      [
        'ci',
        "clustered by id, identifiers back to utf8mb4_unicode_ci (the migrations' collation, after a rebuild)",
        `ALTER TABLE ${T} ${BINARY_COLUMNS.map(([c, type]) => `MODIFY \`${c}\` ${type.replace(/CHARACTER SET \w+ COLLATE \w+/, 'CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci')}`).join(', ')}`,
      ],
    ];
    const wanted = (process.env.BENCH_LAYOUTS || 'id,message').split(',').map((l) => l.trim());
    const layouts = all.filter(([key]) => wanted.includes(key));
    if (layouts.length === 0) throw new Error(`BENCH_LAYOUTS: pick from ${all.map(([key]) => key).join(', ')}`);
    for (const [, name, alter] of layouts) {
      for (const statement of typeof alter === 'string' ? [alter] : (alter ?? [])) {
        log(`rebuilding: ${statement}`);
        await bench.db.raw(statement);
        // The rows inserted back come from the copy: give it the same column types, so that the insert
        // measures the layout and not a conversion between character sets.
        if (/ MODIFY `/.test(statement)) await bench.db.raw(statement.replace(`ALTER TABLE ${T}`, 'ALTER TABLE bench_copy'));
      }
      if (alter) await bench.db.raw(`ANALYZE TABLE ${T}`);
      if (alter === MESSAGE_NUMBERS) {
        const [rows] = (await bench.db.raw('SELECT no FROM bench_message_numbers WHERE message_kind = ? AND message_id = ?', [
          TARGET.kind,
          TARGET.id,
        ])) as [{ no: number }[]];
        targetNo = rows[0].no;
      }
      log(`${name}: deleting ${fmtInt(targetRows)} rows in chunks of ${CHUNK}`);
      const del = await timedPhase(bench.db, server.pid, () => deleteInChunks(bench.db));
      log(`${name}: inserting them back`);
      const extra = targetNo === null ? [] : ['message_no'];
      const ins = await timedPhase(bench.db, server.pid, () =>
        ORDER === 'id' ? insertBackInChunks(bench.db, 'bench_copy', T, CHUNK, extra) : insertBackInReadsOrder(bench.db, extra),
      );
      results[name] = { delete: del, insert: ins };
      log(
        `${name}: delete ${del.seconds.toFixed(1)} s (MariaDB CPU ${del.dbCpuSeconds?.toFixed(1)} s), insert ${ins.seconds.toFixed(1)} s (${ins.dbCpuSeconds?.toFixed(1)} s)`,
      );
    }
    const markdown = table(
      ['layout', 'delete s', 'delete MariaDB CPU s (incl. purge)', 'insert s', 'insert MariaDB CPU s'],
      Object.entries(results).map(([name, r]) => [
        name,
        r.delete.seconds.toFixed(1),
        r.delete.dbCpuSeconds?.toFixed(1) ?? 'n/a',
        r.insert.seconds.toFixed(1),
        r.insert.dbCpuSeconds?.toFixed(1) ?? 'n/a',
      ]),
    );
    console.log(
      `\n${fmtInt(targetRows)} rows of one message among ${fmtInt(otherRows)}, chunks of ${CHUNK} in ${ORDER} order, ${server.description}\n\n${markdown}\n`,
    );
    saveResults('clustering', { targetRows, otherRows, order: ORDER, server: server.description, results, markdown });
  } finally {
    await bench.drop();
    await server.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
