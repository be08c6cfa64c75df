/** Restore requests an actor accepted, kept in MySQL until a restore serves them (migration 009). */
import type { Db } from '../db/knex';
import type { MessageRef, PendingRestore } from '../shared/types';
import { fromSqlDatetime, toSqlDatetime } from './availability';

/** Idempotent: a retried keep, or one that comes after the request was settled, changes nothing. */
export async function keepRestoreRequest(db: Db, ref: MessageRef, request: PendingRestore): Promise<void> {
  await db('restore_requests')
    .insert({
      kind: ref.kind,
      message_id: ref.id,
      request_id: request.requestId,
      requested_by: request.requestedBy,
      requested_at: toSqlDatetime(request.requestedAt),
      notify_workflow_id: request.notifyWorkflowId ?? null,
      callback_url: request.callbackUrl ?? null,
    })
    .onConflict(['kind', 'message_id', 'request_id'])
    .ignore();
}

export async function settleRestoreRequests(db: Db, ref: MessageRef, requestIds: readonly string[]): Promise<void> {
  if (requestIds.length === 0) return;
  const now = db.raw('CURRENT_TIMESTAMP(3)');
  await db('restore_requests')
    .insert(
      requestIds.map((requestId) => ({
        kind: ref.kind,
        message_id: ref.id,
        request_id: requestId,
        requested_at: now,
        settled_at: now,
      })),
    )
    .onConflict(['kind', 'message_id', 'request_id'])
    .merge({ settled_at: db.raw('COALESCE(settled_at, CURRENT_TIMESTAMP(3))') } as Record<string, unknown>);
}

export async function pendingRestoreRequests(db: Db, ref: MessageRef): Promise<PendingRestore[]> {
  const rows = await db('restore_requests')
    .where({ kind: ref.kind, message_id: ref.id })
    .whereNull('settled_at')
    .orderBy('requested_at')
    .select<
      { request_id: string; requested_by: string; requested_at: string; notify_workflow_id: string | null; callback_url: string | null }[]
    >('request_id', 'requested_by', 'requested_at', 'notify_workflow_id', 'callback_url');
  return rows.map((r) => ({
    requestId: r.request_id,
    requestedBy: r.requested_by,
    requestedAt: fromSqlDatetime(r.requested_at) as string,
    ...(r.notify_workflow_id ? { notifyWorkflowId: r.notify_workflow_id } : {}),
    ...(r.callback_url ? { callbackUrl: r.callback_url } : {}),
  }));
}
