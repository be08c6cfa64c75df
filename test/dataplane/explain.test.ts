/**
 * The read paths use their indexes: EXPLAIN of the exact SQL the features run, over messages' own hot
 * tables with many users each (statistics refreshed), shows an index range in the message's table,
 * never a full scan, and never the template table `interactions`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Knex } from 'knex';
import { interactionUsersQuery, type MessageTable } from '../../src/dataplane/filters/evaluate';
import { receivedFactsQuery, userMessagesQuery } from '../../src/dataplane/received';
import { userDataRowsQuery } from '../../src/dataplane/userDataCsv';
import type { Db } from '../../src/db/knex';
import type { MessageRef } from '../../src/shared/types';
import { ensureHotTable } from '../../src/storage/hotTables';
import { createStack, type TestStack } from '../support/stack';

interface PlanRow {
  table: string | null;
  type: string | null;
  key: string | null;
  Extra: string | null;
  rows: number | string | null;
}

async function explain(db: Db, query: Knex.QueryBuilder | Knex.Raw): Promise<PlanRow[]> {
  const { sql, bindings } = query.toSQL() as { sql: string; bindings: readonly unknown[] };
  const [rows] = (await db.raw(`EXPLAIN ${sql}`, bindings as Knex.RawBinding[])) as [PlanRow[]];
  return rows.filter((r) => r.table !== null && !String(r.table).startsWith('<'));
}

const ROWS_PER_MESSAGE = 12_000;

describe('query plans', () => {
  let stack: TestStack;
  const tables = new Map<string, MessageTable>();
  const table = (id: string): MessageTable => {
    const t = tables.get(id);
    if (!t) throw new Error(`no table seeded for ${id}`);
    return t;
  };

  before(async () => {
    stack = await createStack();
    // 12,000 rows in each message's table, over 5,000 users, generated in SQL.
    const digits =
      '(SELECT 0 v UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9)';
    const refs: MessageRef[] = [
      ...['m1', 'm2', 'm3', 'm7'].map((id) => ({ kind: 'campaign' as const, id })),
      { kind: 'canvas', id: 'm10' },
    ];
    for (const [k, ref] of refs.entries()) {
      const t = { ref, table: await ensureHotTable(stack.db, ref, { rows: 12_000 }) };
      tables.set(ref.id, t);
      await stack.db.raw(
        `INSERT INTO ?? (event_id, message_kind, message_id, user_id, event_type, step_id, channel, occurred_at)
         SELECT CONCAT(?, '-', n), ?, ?, CONCAT('u', (n * 7919 + ?) % 5000),
                ELT(1 + n % 4, 'received', 'received', 'opened', 'clicked'), IF(? = 'canvas', 's1', NULL), 'email',
                TIMESTAMP('2026-01-01') + INTERVAL n MINUTE
         FROM (SELECT a.v + 10 * b.v + 100 * c.v + 1000 * d.v + 10000 * e.v AS n FROM ${digits} a, ${digits} b, ${digits} c, ${digits} d, ${digits} e) s
         WHERE n < ?`,
        [t.table.name, ref.id, ref.kind, ref.id, k, ref.kind, ROWS_PER_MESSAGE],
      );
      // What ingestion would have written for those rows.
      await stack.db.raw(
        'INSERT INTO user_messages (user_id, message_kind, message_id) SELECT DISTINCT user_id, message_kind, message_id FROM ??',
        [t.table.name],
      );
      await stack.db.raw('ANALYZE TABLE ??', [t.table.name]);
    }
    await stack.db.raw('ANALYZE TABLE user_messages');
  });
  after(async () => stack?.close());

  /** The plan rows of the messages' tables (aliased `i` by the filters); the template is never one of them. */
  const hotRowsPlan = (plan: PlanRow[]) => {
    assert.ok(!plan.some((r) => r.table === 'interactions'), `the template table is read: ${JSON.stringify(plan)}`);
    const names = new Set([...tables.values()].map((t) => t.table.name));
    return plan.filter((r) => r.table === 'i' || names.has(String(r.table)));
  };

  const noFullScan = (plan: PlanRow[], key: string) => {
    assert.equal(plan.length, 1, JSON.stringify(plan));
    assert.equal(plan[0].key, key, JSON.stringify(plan));
    assert.notEqual(plan[0].type, 'ALL', JSON.stringify(plan));
    assert.notEqual(plan[0].type, 'index', `a full index scan: ${JSON.stringify(plan)}`);
  };

  it('"Received Message from Campaign" reads one index range, already in user order (first page and later pages)', async () => {
    await stack.db('message_availability').insert({ kind: 'campaign', message_id: 'm7', state: 'stopped', available: true, revision: 1 });
    for (const after of [null, 'u2500']) {
      // As evaluate runs it: with the availability condition of the message.
      const all = await explain(
        stack.db,
        interactionUsersQuery(stack.db, [table('m7')], ['received'], {}, {}, after, 1000, { kind: 'campaign', id: 'm7' }),
      );
      // The condition on the availability row is constant: evaluated once (MariaDB does it while
      // optimising and shows no row for it); where it shows, it must be a primary-key lookup.
      for (const r of all.filter((x) => x.table === 'a' || x.table === 'message_availability')) {
        assert.match(String(r.type), /^(const|eq_ref|ref|system)$/, `a primary-key lookup: ${JSON.stringify(all)}`);
      }
      const plan = hotRowsPlan(all);
      noFullScan(plan, 'ix_interactions_reads');
      assert.match(String(plan[0].type), /^(ref|range)$/, `an index lookup: ${JSON.stringify(plan)}`);
      assert.doesNotMatch(String(plan[0].Extra), /filesort|temporary/i, `no sort: ${JSON.stringify(plan)}`);
      assert.match(String(plan[0].Extra), /Using index/, 'covered by the index');
    }
  });

  it('the other interaction filters use the same index', async () => {
    const cases: Parameters<typeof interactionUsersQuery>[3][] = [{}, { alias: 'cta' }, { variantId: 'a' }];
    for (const row of cases) {
      noFullScan(
        hotRowsPlan(await explain(stack.db, interactionUsersQuery(stack.db, [table('m7')], ['clicked', 'opened'], row, {}, null, 100))),
        'ix_interactions_reads',
      );
    }
    noFullScan(
      hotRowsPlan(
        await explain(
          stack.db,
          interactionUsersQuery(stack.db, [table('m10')], ['received'], { stepId: 's1' }, { after: '2026-01-01T00:00:00Z' }, null, 100),
        ),
      ),
      'ix_interactions_reads',
    );
    // Tag filters: one UNION ALL branch per tagged message, each a range of its table's reads index.
    for (const window of [{}, { after: '2026-01-01T00:00:00Z' }]) {
      const all = await explain(
        stack.db,
        interactionUsersQuery(stack.db, [table('m1'), table('m2'), table('m3')], ['received', 'opened'], {}, window, 'u100', 100),
      );
      const branches = hotRowsPlan(all);
      assert.equal(branches.length, 3, JSON.stringify(all));
      for (const b of branches) {
        assert.equal(b.key, 'ix_interactions_reads', JSON.stringify(all));
        assert.match(String(b.type), /^(ref|range)$/, `an index lookup: ${JSON.stringify(all)}`);
        assert.match(String(b.Extra), /Using index/, 'covered by the index');
      }
    }
  });

  it("profiles and the users export find a user's messages by primary key and read each message's part of ix_interactions_reads; the User Data export one message", async () => {
    const fifty = Array.from({ length: 50 }, (_, i) => `u${i * 13}`);
    noFullScan(await explain(stack.db, userMessagesQuery(stack.db, ['u42'])), 'PRIMARY');
    noFullScan(await explain(stack.db, userMessagesQuery(stack.db, fifty)), 'PRIMARY');
    for (const users of [['u42'], fifty]) {
      noFullScan(hotRowsPlan(await explain(stack.db, receivedFactsQuery(stack.db, [{ ...table('m7'), users }]))), 'ix_interactions_reads');
    }
    // Several messages in one statement: every part a range of its table's reads index, none a scan.
    const all = await explain(
      stack.db,
      receivedFactsQuery(
        stack.db,
        ['m1', 'm2', 'm3'].map((id) => ({ ...table(id), users: fifty })),
      ),
    );
    const parts = hotRowsPlan(all);
    assert.equal(parts.length, 3, JSON.stringify(all));
    assert.deepEqual(
      new Set(parts.map((p) => p.table)),
      new Set(['m1', 'm2', 'm3'].map((id) => table(id).table.name)),
      "each part reads its own message's table",
    );
    for (const part of parts) {
      assert.equal(part.key, 'ix_interactions_reads', JSON.stringify(parts));
      assert.equal(part.type, 'range', JSON.stringify(parts));
    }
    // The User Data export reads every row of the message, which are all the rows of its table.
    const m7 = table('m7');
    const csv = await explain(stack.db, userDataRowsQuery(stack.db, m7.table, m7.ref));
    assert.equal(csv.length, 1, JSON.stringify(csv));
    assert.equal(csv[0].table, m7.table.name, JSON.stringify(csv));
    assert.ok(Number(csv[0].rows) <= ROWS_PER_MESSAGE * 1.5, `reads the message's rows only: ${JSON.stringify(csv)}`);
  });

  it("reads a small message's segment as a range of the shared table: filters off ix_interactions_reads, the User Data export off the primary key", async () => {
    const refs: MessageRef[] = ['s1', 's2', 's3'].map((id) => ({ kind: 'campaign', id }));
    const segments = [];
    for (const ref of refs) {
      const segment = await ensureHotTable(stack.db, ref);
      assert.ok(segment.shared);
      segments.push({ ref, table: segment });
      await stack.db(segment.name).insert(
        Array.from({ length: 400 }, (_, n) => ({
          event_id: `${ref.id}-${n}`,
          message_kind: ref.kind,
          message_id: ref.id,
          user_id: `u${(n * 31) % 300}`,
          event_type: ['received', 'opened', 'clicked'][n % 3],
          channel: 'email',
          occurred_at: '2026-01-01 00:00:00.000',
        })),
      );
    }
    const shared = segments[0].table.name;
    await stack.db.raw('ANALYZE TABLE ??', [shared]);
    const ofShared = (plan: PlanRow[]) => plan.filter((r) => r.table === 'i' || r.table === shared);

    const filter = ofShared(await explain(stack.db, interactionUsersQuery(stack.db, [segments[1]], ['received'], {}, {}, null, 100)));
    noFullScan(filter, 'ix_interactions_reads');
    assert.match(String(filter[0].type), /^(ref|range)$/, JSON.stringify(filter));
    assert.match(String(filter[0].Extra), /Using index/, 'covered by the index');

    const csv = ofShared(await explain(stack.db, userDataRowsQuery(stack.db, segments[1].table, segments[1].ref)));
    assert.equal(csv.length, 1, JSON.stringify(csv));
    assert.match(String(csv[0].type), /^(ref|range)$/, `a range, not the shared table: ${JSON.stringify(csv)}`);
    assert.ok(Number(csv[0].rows) <= 400 * 1.5, `reads the message's rows only: ${JSON.stringify(csv)}`);
  });
});
