/**
 * A backlog of due messages and the live traffic beside it, as bench:backlog and bench:brake both make
 * them: messages seeded straight into their hot tables, their actors started by a stop a year back (all
 * due when a worker polls), and batches of events of other, live messages.
 */
import { randomBytes } from 'node:crypto';
import { TypedSearchAttributes } from '@temporalio/common';
import type { InteractionEvent } from '../../src/dataplane/ingest/events';
import type { Db } from '../../src/db/knex';
import { MessageKindAttr } from '../../src/shared/searchAttributes';
import type { MessageRef } from '../../src/shared/types';
import { LIFECYCLE_WORKFLOW_TYPE, lifecycleWorkflowId, TASK_QUEUE } from '../../src/shared/workflowId';
import { stopSignal } from '../../workflows/definitions';
import { forEachLimited } from './dataset';
import type { BenchTemporal } from './stack';

/** Message i of a backlog: campaigns and Canvases alternate, as `seedDueRows` writes them. */
export function dueRef(prefix: string, i: number): MessageRef {
  return { kind: i % 2 ? 'canvas' : 'campaign', id: `${prefix}${i}` };
}

/** Into a staging table of `loadIntoHotTables`: `rowsEach` rows of each of `messages` messages named `<prefix><i>`. */
export async function seedDueRows(db: Db, staging: string, prefix: string, messages: number, rowsEach: number): Promise<void> {
  for (let from = 0; from < messages; from += 1000) {
    const to = Math.min(messages, from + 1000) - 1;
    await db.raw(`
      INSERT INTO \`${staging}\` (event_id, message_kind, message_id, user_id, event_type, variant_id, step_id, channel, occurred_at)
      SELECT UUID(), IF(a.seq % 2 = 1, 'canvas', 'campaign'), CONCAT('${prefix}', a.seq),
             CONCAT('user-', (a.seq * 7919 + r.seq) % 50000), ELT(1 + r.seq % 3, 'received', 'opened', 'clicked'),
             IF(a.seq % 2 = 0, 'variant-1', NULL), IF(a.seq % 2 = 1, 'step-1', NULL), 'email',
             TIMESTAMPADD(SECOND, a.seq * 10 + r.seq, TIMESTAMP'2024-01-01 00:00:00')
        FROM seq_${from}_to_${to} a JOIN seq_1_to_${rowsEach} r`);
  }
}

/** Starts every actor with its stop, dated a year back, `concurrency` signals at a time. */
export async function startDueActors(
  temporal: BenchTemporal,
  refs: readonly MessageRef[],
  concurrency: number,
  onStarted?: (started: number) => void,
): Promise<void> {
  const stoppedAt = new Date(Date.now() - 365 * 86_400_000).toISOString();
  let started = 0;
  await forEachLimited(refs, concurrency, async (ref) => {
    await temporal.client.workflow.signalWithStart(LIFECYCLE_WORKFLOW_TYPE, {
      workflowId: lifecycleWorkflowId(ref),
      taskQueue: TASK_QUEUE,
      args: [{ kind: ref.kind, id: ref.id }],
      typedSearchAttributes: new TypedSearchAttributes([{ key: MessageKindAttr, value: ref.kind }]),
      signal: stopSignal,
      signalArgs: [{ stoppedAt }],
    });
    started += 1;
    onStarted?.(started);
  });
}

/** A batch of live traffic: events `first`… of 50 live campaigns, none of them due. */
export function liveEvents(first: number, batch: number): InteractionEvent[] {
  return Array.from({ length: batch }, (_, k) => {
    const n = first + k;
    return {
      eventId: `live-${n}-${randomBytes(3).toString('hex')}`,
      type: 'opened',
      messageKind: 'campaign',
      messageId: `live-${n % 50}`,
      userId: `live-user-${n % 20_000}`,
      occurredAt: new Date().toISOString(),
      variantId: 'v1',
    };
  });
}

/** One number a query counts (`SELECT … AS n`). */
export async function countOf(db: Db, sql: string): Promise<number> {
  const [rows] = (await db.raw(sql)) as [{ n: string | number | null }[]];
  return Number(rows[0].n ?? 0);
}
