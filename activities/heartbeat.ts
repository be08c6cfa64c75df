import type { Context } from '@temporalio/activity';

/** What is used of the activity's context (its whole `Context` fits). */
export type HeartbeatContext = Pick<Context, 'heartbeat'> & { info: Pick<Context['info'], 'heartbeatTimeoutMs'> };

/** How long an attempt may go without progress and still be kept alive by the timer. */
export const STALL_LIMIT_MS = 5 * 60_000;

/**
 * Runs a long move, heartbeating its latest cursor on every progress report and also on a timer. Some
 * of a move's steps report no progress for longer than the heartbeat timeout: the archive's DROP TABLE
 * waits for a reader's metadata lock (a users export still streaming the table), the first statements
 * count a large table, a restore deletes its long-term copy. Without the timer, Temporal would time such
 * an attempt out and start another beside it, which waits on the same thing and holds another
 * connection. The timer stops after `stallLimitMs` without progress, so an attempt that is truly stuck
 * (a connection that never answers) still misses its heartbeats and is retried.
 */
export async function heartbeatWhile<C, T>(
  ctx: HeartbeatContext,
  resumeFrom: C | undefined,
  work: (report: (cursor: C) => void) => Promise<T>,
  stallLimitMs = STALL_LIMIT_MS,
): Promise<T> {
  let latest = resumeFrom;
  let progressAt = Date.now();
  const beat = () => ctx.heartbeat(latest);
  // The SDK throttles heartbeats to a fraction of the timeout; a third of it leaves room for a late tick.
  const every = Math.max(250, Math.floor((ctx.info.heartbeatTimeoutMs ?? 30_000) / 3));
  const timer = setInterval(() => {
    if (Date.now() - progressAt < stallLimitMs) beat();
  }, every);
  timer.unref();
  try {
    return await work((cursor) => {
      latest = cursor;
      progressAt = Date.now();
      beat();
    });
  } finally {
    clearInterval(timer);
  }
}
