/**
 * Demo data and narration for `npm run demo`: a few campaigns and Canvases with interactions, one kept
 * retained by an active retargeting segment, stopped with a TTL of seconds, so a newcomer watches them
 * expire, move to long-term storage and come back on restore, here and in the Temporal Web UI.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { LifecycleClient } from './client/lifecycleClient';
import type { Db } from './db/knex';
import type { Logger } from './logger';
import type { LifecycleStatus, MessageRef } from './shared/types';
import { lifecycleWorkflowId } from './shared/workflowId';
import { ensureHotTable } from './storage/hotTables';

interface DemoMessage extends MessageRef {
  name: string;
  tags: string[];
  rows: number;
}

export async function seedDemo(db: Db, runId: string): Promise<{ messages: DemoMessage[]; retained: MessageRef }> {
  const messages: DemoMessage[] = [
    { kind: 'campaign', id: `demo-${runId}-spring-sale`, name: 'Spring sale', tags: ['demo', 'promo'], rows: 12_000 },
    { kind: 'campaign', id: `demo-${runId}-newsletter`, name: 'Monthly newsletter', tags: ['demo', 'newsletter'], rows: 4_000 },
    { kind: 'canvas', id: `demo-${runId}-onboarding`, name: 'Onboarding journey', tags: ['demo', 'lifecycle'], rows: 8_000 },
  ];
  const types = ['received', 'opened', 'clicked', 'converted'];
  for (const m of messages) {
    await db('messages').insert({ kind: m.kind, id: m.id, name: m.name, status: 'active' });
    await db('message_tags').insert(m.tags.map((tag) => ({ kind: m.kind, message_id: m.id, tag })));
    // Made outside the transactions below, as DDL would commit them. Nothing archives the message before
    // it is stopped, after seeding, so its table stays current while the rows go in.
    const table = await ensureHotTable(db, m, { rows: m.rows });
    for (let offset = 0; offset < m.rows; offset += 2_000) {
      const rows = Array.from({ length: Math.min(2_000, m.rows - offset) }, (_, j) => {
        const i = offset + j;
        return {
          event_id: `${m.id}-${i}`,
          message_kind: m.kind,
          message_id: m.id,
          user_id: `user-${i % 1_500}`,
          event_type: types[i % types.length],
          variant_id: m.kind === 'campaign' ? `variant-${i % 2}` : null,
          step_id: m.kind === 'canvas' ? `step-${i % 3}` : null,
          variation_id: m.kind === 'canvas' ? 'variation-a' : null,
          alias: i % 4 === 2 ? 'cta-button' : null,
          channel: i % 2 ? 'email' : 'push',
          occurred_at: new Date(Date.now() - (m.rows - i) * 60_000).toISOString().slice(0, 23).replace('T', ' '),
        };
      });
      // Written directly, like an import: the ledger is what keeps event ids unique, so it gets them too,
      // and `user_messages` is where the profile lists find each user's messages.
      const pairs = [...new Set(rows.map((r) => r.user_id))].map((user_id) => ({ user_id, message_kind: m.kind, message_id: m.id }));
      await db.transaction(async (trx) => {
        await trx('ingested_events').insert(rows.map((r) => ({ event_id: r.event_id })));
        await trx(table.name).insert(rows);
        await trx('user_messages').insert(pairs).onConflict().ignore();
      });
    }
  }
  // An active segment retargets users who received the newsletter: it stays retained.
  const retained = messages[1];
  await db('audiences').insert({ id: `demo-${runId}-engaged-readers`, type: 'segment', name: 'Engaged readers', active: true });
  await db('audience_filters').insert({
    audience_id: `demo-${runId}-engaged-readers`,
    filter_type: 'received_message_from_campaign',
    target_kind: retained.kind,
    target_id: retained.id,
  });
  return { messages, retained };
}

function describeStatus(s: LifecycleStatus): string {
  const rows = s.archive ? ` (${s.archive.rowCount} rows in ${s.archive.chunkCount} chunks, ${s.archive.compressedBytes} bytes)` : '';
  const when = s.expiresAt ? ` until ${s.expiresAt}` : '';
  const refs = s.state === 'retained' ? ` — referenced by ${s.activeReferences} active audience(s)` : '';
  return `${s.state}${when}${rows}${refs}`;
}

/** Runs the demo story and narrates each transition; returns when it has been told or `signal` aborts. */
export async function runDemo(opts: {
  db: Db;
  lifecycle: LifecycleClient;
  log: Logger;
  uiUrl: string | null;
  namespace: string;
  signal: AbortSignal;
}): Promise<void> {
  const { db, lifecycle, log } = opts;
  const runId = new Date().toISOString().slice(11, 19).replace(/:/g, '');
  const { messages, retained } = await seedDemo(db, runId);
  log.info({ messages: messages.map((m) => `${m.kind}:${m.id}`) }, 'demo: seeded messages with interactions; stopping them now');
  for (const m of messages) {
    await lifecycle.updateDetails(m.kind, m.id, { name: m.name, tags: m.tags });
    await lifecycle.stop(m.kind, m.id);
  }
  if (opts.uiUrl) {
    const q = encodeURIComponent(`MessageTags = "demo"`);
    log.info(`demo: watch them in the Web UI: ${opts.uiUrl}/namespaces/${opts.namespace}/workflows?query=${q}`);
  }

  const last = new Map<string, string>();
  const restoreRequested = new Set<string>();
  let released = false;
  while (!opts.signal.aborted) {
    let done = true;
    for (const m of messages) {
      const s = await lifecycle.status(m.kind, m.id).catch(() => null);
      if (!s) continue;
      const line = describeStatus(s);
      if (last.get(m.id) !== s.state) {
        last.set(m.id, s.state);
        log.info(`demo: ${m.name} [${lifecycleWorkflowId(m)}] is ${line}`);
      }
      if (s.state === 'expired' && !restoreRequested.has(m.id)) {
        restoreRequested.add(m.id);
        const { requestId } = await lifecycle.restore(m.kind, m.id, { requestedBy: 'demo@example.com' });
        log.info(`demo: restore of ${m.name} requested by demo@example.com (request ${requestId})`);
      }
      if (!(restoreRequested.has(m.id) && s.state === 'stopped')) done = false;
    }
    // Once the others have gone round, drop the newsletter's reference: it expires at once.
    if (!released && messages.filter((m) => m.id !== retained.id).every((m) => restoreRequested.has(m.id))) {
      released = true;
      await db('audiences')
        .where({ id: `demo-${runId}-engaged-readers` })
        .update({ active: false });
      await lifecycle.referencesChanged(retained.kind, retained.id);
      log.info('demo: the "Engaged readers" segment was deactivated; the newsletter is no longer retained');
    }
    if (done) break;
    await sleep(1_000);
  }
  if (opts.signal.aborted) return;
  const outbox = await db('email_outbox').where({ to_address: 'demo@example.com' }).orderBy('id').select<{ subject: string }[]>('subject');
  for (const e of outbox.slice(-messages.length)) log.info(`demo: e-mail to demo@example.com: "${e.subject}"`);
  log.info('demo: every message expired, moved to long-term storage and was restored; they expire again after another TTL');
}
