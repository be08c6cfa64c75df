/**
 * What the profile lists and the users export cost to read, since migration 005 moved them from the
 * per-user index of `interactions` to `user_messages`: the service's own `receivedByUser` (which, since
 * migration 006, reads each message's own table), against the single query over `ix_interactions_user`
 * that it replaced, on a copy of the same rows in the shared table as it was before (the index added
 * to it after the service's path has been measured).
 *
 *   npm run bench:profiles          2,000,000 rows over 300 campaigns and 50,000 users (about 40 rows each)
 *   BENCH_ROWS=10000000 BENCH_USERS=200000 npm run bench:profiles
 */
import { createBenchDatabase, createSharedTable, distributeIntoHotTables, SHARED_TABLE } from './lib/dataset';
import { fmtInt, uptimeLine } from './lib/proc';
import { envInt, exitWhenSettled, log, saveResults, table } from './lib/report';
import { startBenchServer } from './lib/server';
import type { Db } from '../src/db/knex';
import { loadMessages } from '../src/dataplane/messages';
import { receivedByUser } from '../src/dataplane/received';
import { availabilityOf, inSnapshot } from '../src/dataplane/sql';
import type { MessageKind, MessageRef } from '../src/shared/types';

const MESSAGES = 300;
const SINGLE_USER_READS = 300;
const EXPORT_READS = 20;
const EXPORT_USERS = 50;

/** The read before migration 005: every fact of the users in one statement through ix_interactions_user of the shared table. */
async function throughUserIndex(db: Db, userIds: string[]): Promise<number> {
  return inSnapshot(db, async (trx) => {
    const rows = await trx(SHARED_TABLE)
      .select('user_id', 'message_kind', 'message_id', 'event_type', 'variant_id', 'step_id', 'variation_id', 'channel')
      .max('occurred_at as last_at')
      .whereIn('user_id', userIds)
      .groupBy<{ message_kind: MessageKind; message_id: string }[]>(
        'user_id',
        'message_kind',
        'message_id',
        'event_type',
        'variant_id',
        'step_id',
        'variation_id',
        'channel',
      );
    const refs = new Map<string, MessageRef>(
      rows.map((r) => [`${r.message_kind}:${r.message_id}`, { kind: r.message_kind, id: r.message_id }]),
    );
    await availabilityOf(trx, [...refs.values()]);
    await loadMessages(trx, [...refs.values()]);
    return rows.length;
  });
}

/**
 * The service's path must list, for a sample of users, every campaign the shared copy holds a receipt
 * of for them; else it would be timing reads of tables that are not where the rows are.
 */
async function checkSameMessages(db: Db, users: number): Promise<void> {
  for (let i = 0; i < 20; i++) {
    const user = `u${(i * 7919) % users}`;
    const listed = (await receivedByUser(db, [user])).get(user)?.campaigns.length ?? 0;
    const [[{ n }]] = (await db.raw("SELECT COUNT(DISTINCT message_id) AS n FROM ?? WHERE user_id = ? AND event_type = 'received'", [
      SHARED_TABLE,
      user,
    ])) as [{ n: number | string }[]];
    if (listed !== Number(n)) throw new Error(`receivedByUser lists ${listed} campaigns for ${user}, the rows hold receipts of ${n}`);
  }
}

interface Figures {
  oneUser: { p50: number; p95: number; max: number };
  export50: { p50: number; max: number };
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

async function measure(read: (userIds: string[]) => Promise<unknown>, users: number): Promise<Figures> {
  const time = async (ids: string[]) => {
    const started = process.hrtime.bigint();
    await read(ids);
    return Number(process.hrtime.bigint() - started) / 1e6;
  };
  // Warm-up, not counted: the first reads of a path pay for the connections and the code's first runs.
  for (let i = 0; i < 30; i++) await read([`u${(i * 104729) % users}`]);
  const one: number[] = [];
  for (let i = 0; i < SINGLE_USER_READS; i++) one.push(await time([`u${(i * 7919) % users}`]));
  const many: number[] = [];
  for (let i = 0; i < EXPORT_READS; i++)
    many.push(await time(Array.from({ length: EXPORT_USERS }, (_, k) => `u${((i * EXPORT_USERS + k) * 13) % users}`)));
  one.sort((a, b) => a - b);
  many.sort((a, b) => a - b);
  return {
    oneUser: { p50: quantile(one, 0.5), p95: quantile(one, 0.95), max: one[one.length - 1] },
    export50: { p50: quantile(many, 0.5), max: many[many.length - 1] },
  };
}

async function main(): Promise<void> {
  const rows = envInt('BENCH_ROWS', 2_000_000);
  const users = envInt('BENCH_USERS', 50_000);
  const server = await startBenchServer(log);
  const bench = await createBenchDatabase(server.url, 'bench_profiles');
  try {
    const before = uptimeLine();
    log(`${fmtInt(rows)} rows over ${MESSAGES} campaigns and ${fmtInt(users)} users`);
    await bench
      .db('messages')
      .insert(Array.from({ length: MESSAGES }, (_, m) => ({ kind: 'campaign', id: `m${m}`, name: `Campaign ${m}`, status: 'active' })));
    await createSharedTable(bench.db);
    for (let from = 1; from <= rows; from += 1_000_000) {
      const to = Math.min(rows, from + 999_999);
      // MariaDB's SEQUENCE engine; users spread by a multiplicative hash, messages round the 300.
      await bench.db.raw(
        `INSERT INTO ${SHARED_TABLE} (event_id, message_kind, message_id, user_id, event_type, channel, occurred_at)
         SELECT CONCAT('e', seq), 'campaign', CONCAT('m', (seq * 7) % ${MESSAGES}), CONCAT('u', (seq * 2654435761) % ${users}),
                ELT(1 + seq % 4, 'received', 'received', 'opened', 'clicked'), 'email', TIMESTAMP'2026-01-01 00:00:00' + INTERVAL seq SECOND
           FROM seq_${from}_to_${to}`,
      );
    }
    // Where, and what, ingestion would have written for these rows.
    await distributeIntoHotTables(bench.db, SHARED_TABLE, log);
    await bench.db.raw(
      'INSERT INTO user_messages (user_id, message_kind, message_id) SELECT DISTINCT user_id, message_kind, message_id FROM ??',
      [SHARED_TABLE],
    );
    await bench.db.raw('ANALYZE TABLE ??, user_messages', [SHARED_TABLE]);

    await checkSameMessages(bench.db, users);
    log("measuring user_messages, then each message's table's ix_interactions_reads (the service)");
    const current = await measure((ids) => receivedByUser(bench.db, ids), users);
    log('adding ix_interactions_user to the shared table and measuring the query it served');
    await bench.db.raw('ALTER TABLE ?? ADD INDEX ix_interactions_user (user_id)', [SHARED_TABLE]);
    await bench.db.raw('ANALYZE TABLE ??', [SHARED_TABLE]);
    const previous = await measure((ids) => throughUserIndex(bench.db, ids), users);
    const after = uptimeLine();

    const ms = (n: number) => n.toFixed(1);
    const markdown = [
      `Server: ${server.description}. ${fmtInt(rows)} rows over ${MESSAGES} campaigns and ${fmtInt(users)} users; ${SINGLE_USER_READS} single-user reads, ${EXPORT_READS} reads of ${EXPORT_USERS} users.`,
      '',
      table(
        ['read path', 'one user p50 ms', 'p95 ms', 'max ms', `${EXPORT_USERS} users p50 ms`, 'max ms'],
        [
          [
            "user_messages, then ix_interactions_reads of each message's table (migrations 005 and 006)",
            ms(current.oneUser.p50),
            ms(current.oneUser.p95),
            ms(current.oneUser.max),
            ms(current.export50.p50),
            ms(current.export50.max),
          ],
          [
            'ix_interactions_user of the shared table (before migration 005)',
            ms(previous.oneUser.p50),
            ms(previous.oneUser.p95),
            ms(previous.oneUser.max),
            ms(previous.export50.p50),
            ms(previous.export50.max),
          ],
        ],
      ),
      '',
      `Load: before \`${before}\`; after \`${after}\`.`,
    ].join('\n');
    log(`results: ${saveResults('profiles', { rows, users, current, previous, markdown })}`);
    process.stdout.write(`${markdown}\n`);
  } finally {
    if (!process.env.BENCH_KEEP) await bench.drop();
    await server.stop();
  }
}

exitWhenSettled(main());
