/**
 * The read paths use their indexes: EXPLAIN of the exact SQL the features run, over a hot table with
 * many messages and users (statistics refreshed), shows an index range, never a full scan.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Knex } from 'knex';
import { interactionUsersQuery } from '../../src/dataplane/filters/evaluate';
import { receivedFactsQuery, userMessagesQuery } from '../../src/dataplane/received';
import { userDataRowsQuery } from '../../src/dataplane/userDataCsv';
import type { Db } from '../../src/db/knex';
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

describe('query plans', () => {
  let stack: TestStack;

  before(async () => {
    stack = await createStack();
    // 60,000 rows over 200 campaigns and 5,000 users, generated in SQL.
    const digits = '(SELECT 0 v UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9)';
    await stack.db.raw(
      `INSERT INTO interactions (event_id, message_kind, message_id, user_id, event_type, step_id, channel, occurred_at)
       SELECT CONCAT('x-', n), IF(n % 10 = 0, 'canvas', 'campaign'), CONCAT('m', n % 200), CONCAT('u', (n * 7919) % 5000),
              ELT(1 + n % 4, 'received', 'received', 'opened', 'clicked'), IF(n % 10 = 0, 's1', NULL), 'email',
              TIMESTAMP('2026-01-01') + INTERVAL n MINUTE
       FROM (SELECT a.v + 10 * b.v + 100 * c.v + 1000 * d.v + 10000 * e.v AS n FROM ${digits} a, ${digits} b, ${digits} c, ${digits} d, ${digits} e) s
       WHERE n < 60000`,
    );
    // What ingestion would have written for those rows.
    await stack.db.raw('INSERT INTO user_messages (user_id, message_kind, message_id) SELECT DISTINCT user_id, message_kind, message_id FROM interactions');
    await stack.db.raw('ANALYZE TABLE interactions, user_messages');
  });
  after(async () => stack?.close());

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
      const all = await explain(stack.db, interactionUsersQuery(stack.db, [{ kind: 'campaign', id: 'm7' }], ['received'], {}, {}, after, 1000, { kind: 'campaign', id: 'm7' }));
      // The condition on the availability row is constant: evaluated once (MariaDB does it while
      // optimising and shows no row for it); where it shows, it must be a primary-key lookup.
      for (const r of all.filter((x) => x.table === 'a' || x.table === 'message_availability')) {
        assert.match(String(r.type), /^(const|eq_ref|ref|system)$/, `a primary-key lookup: ${JSON.stringify(all)}`);
      }
      const plan = all.filter((r) => r.table === 'i' || r.table === 'interactions');
      noFullScan(plan, 'ix_interactions_reads');
      assert.match(String(plan[0].type), /^(ref|range)$/, `an index lookup: ${JSON.stringify(plan)}`);
      assert.doesNotMatch(String(plan[0].Extra), /filesort|temporary/i, `no sort: ${JSON.stringify(plan)}`);
      assert.match(String(plan[0].Extra), /Using index/, 'covered by the index');
    }
  });

  it('the other interaction filters use the same index', async () => {
    const cases: Parameters<typeof interactionUsersQuery>[3][] = [{}, { alias: 'cta' }, { variantId: 'a' }];
    for (const row of cases) {
      noFullScan(await explain(stack.db, interactionUsersQuery(stack.db, [{ kind: 'campaign', id: 'm7' }], ['clicked', 'opened'], row, {}, null, 100)), 'ix_interactions_reads');
    }
    noFullScan(await explain(stack.db, interactionUsersQuery(stack.db, [{ kind: 'canvas', id: 'm10' }], ['received'], { stepId: 's1' }, { after: '2026-01-01T00:00:00Z' }, null, 100)), 'ix_interactions_reads');
    // Tag filters: one range per tagged message.
    const tagged = [{ kind: 'campaign', id: 'm1' }, { kind: 'campaign', id: 'm2' }, { kind: 'campaign', id: 'm3' }] as const;
    noFullScan(await explain(stack.db, interactionUsersQuery(stack.db, [...tagged], ['received'], {}, {}, null, 100)), 'ix_interactions_reads');
  });

  it('profiles and the users export find a user\'s messages by primary key and read each message\'s part of ix_interactions_reads; the User Data export one message', async () => {
    const fifty = Array.from({ length: 50 }, (_, i) => `u${i * 13}`);
    noFullScan(await explain(stack.db, userMessagesQuery(stack.db, ['u42'])), 'PRIMARY');
    noFullScan(await explain(stack.db, userMessagesQuery(stack.db, fifty)), 'PRIMARY');
    for (const users of [['u42'], fifty]) {
      noFullScan(await explain(stack.db, receivedFactsQuery(stack.db, [{ ref: { kind: 'campaign', id: 'm7' }, users }])), 'ix_interactions_reads');
    }
    // Several messages in one statement: every part a range of the reads index, none a scan.
    const parts = await explain(stack.db, receivedFactsQuery(stack.db, ['m1', 'm2', 'm3'].map((id) => ({ ref: { kind: 'campaign' as const, id }, users: fifty }))));
    assert.equal(parts.length, 3, JSON.stringify(parts));
    for (const part of parts) {
      assert.equal(part.key, 'ix_interactions_reads', JSON.stringify(parts));
      assert.equal(part.type, 'range', JSON.stringify(parts));
    }
    const csv = await explain(stack.db, userDataRowsQuery(stack.db, { kind: 'campaign', id: 'm7' }));
    assert.equal(csv.length, 1);
    assert.match(String(csv[0].key), /^ix_interactions_(reads|message)$/, JSON.stringify(csv));
    assert.notEqual(csv[0].type, 'ALL');
  });
});
