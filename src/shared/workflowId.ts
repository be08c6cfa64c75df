import { MESSAGE_KINDS, type MessageKind, type MessageRef } from './types';

/** Message ids are API identifiers: letters, digits, '-', '_' and '.', at most 64 characters. */
export const MESSAGE_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$';
const MESSAGE_ID_RE = new RegExp(MESSAGE_ID_PATTERN);

export const TASK_QUEUE = 'interaction-data';
/**
 * Archives, sweeps and restores, polled by each worker with WORKER_MOVE_SLOTS slots of their own: the
 * bound on moves running at once per worker, which leaves TASK_QUEUE's slots to the short activities.
 */
export const MOVES_TASK_QUEUE = 'interaction-data-moves';
/**
 * Where a bulk restore's per-message watches run. A watch holds its activity slot until the actor has
 * restored the message, and the actor needs slots on TASK_QUEUE for that; on one queue, enough watches
 * (one request at concurrency 100, or several requests) would take every slot and wait for ever.
 */
export const BULK_WATCH_TASK_QUEUE = 'interaction-data-bulk-watch';
export const LIFECYCLE_WORKFLOW_TYPE = 'interactionDataLifecycle';
export const ERASURE_WORKFLOW_TYPE = 'interactionDataErasure';

/** One workflow per erasure request: the same request started twice is one erasure. */
export function erasureWorkflowId(requestId: string): string {
  return `interaction-data-erasure:${requestId}`;
}

export function isMessageKind(value: unknown): value is MessageKind {
  return typeof value === 'string' && (MESSAGE_KINDS as readonly string[]).includes(value);
}

export function isMessageId(value: unknown): value is string {
  return typeof value === 'string' && MESSAGE_ID_RE.test(value);
}

export class InvalidMessageRefError extends Error {
  override name = 'InvalidMessageRefError';
}

/** Validates a message reference and returns it typed; throws a message a user can act on. */
export function messageRef(kind: unknown, id: unknown): MessageRef {
  if (!isMessageKind(kind)) {
    throw new InvalidMessageRefError(`unknown message kind ${JSON.stringify(kind)}: expected one of ${MESSAGE_KINDS.join(', ')}`);
  }
  if (!isMessageId(id)) {
    throw new InvalidMessageRefError(
      `malformed ${kind} id ${JSON.stringify(id)}: 1-64 characters of letters, digits, '-', '_' or '.', starting with a letter or digit`,
    );
  }
  return { kind, id };
}

/** The one place a lifecycle workflow ID is derived: `interaction-data:<kind>:<id>`. */
export function lifecycleWorkflowId(ref: MessageRef): string {
  return `interaction-data:${ref.kind}:${ref.id}`;
}

/** Parses `<kind>:<id>` as typed on the command line. */
export function parseMessageRef(text: string): MessageRef {
  const sep = text.indexOf(':');
  if (sep < 0) throw new InvalidMessageRefError(`expected <kind>:<id>, got ${JSON.stringify(text)}`);
  return messageRef(text.slice(0, sep), text.slice(sep + 1));
}
