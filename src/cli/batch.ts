/** Runs one call per message with bounded concurrency and progress, and reports the outcome per message. */
import type { LifecycleClient } from '../client/lifecycleClient';
import type { MessageRef } from '../shared/types';
import { classifyFailure, errorMessage } from '../api/errors';
import { refLabel } from './args';
import { CommandFailedError, TEMPORAL_CALL_TIMEOUT_MS, type CliContext } from './context';
import { mapLimit, startProgress } from './progress';

export type Outcome<R> = { ref: MessageRef; ok: true; value: R } | { ref: MessageRef; ok: false; error: unknown };

/** Enough parallelism to make a long list quick without flooding the frontend. */
const CONCURRENCY = 8;

export function describeFailure(err: unknown): string {
  switch (classifyFailure(err)) {
    case 'temporal_timeout':
      return `Temporal did not answer within ${TEMPORAL_CALL_TIMEOUT_MS / 1000} s (is an interaction-data worker running?)`;
    case 'temporal_unavailable':
      return `the Temporal server cannot be reached: ${errorMessage(err)}`;
    default:
      return errorMessage(err);
  }
}

export async function forEachRef<R>(
  ctx: CliContext,
  refs: readonly MessageRef[],
  label: string,
  fn: (lifecycle: LifecycleClient, ref: MessageRef) => Promise<R>,
): Promise<Outcome<R>[]> {
  const lifecycle = await ctx.lifecycle();
  const progress = startProgress(ctx, { label, total: refs.length, unit: 'messages', minTotalForBar: 2 });
  try {
    return await mapLimit(refs, CONCURRENCY, async (ref): Promise<Outcome<R>> => {
      try {
        const value = await ctx.withDeadline(() => fn(lifecycle, ref));
        return { ref, ok: true, value };
      } catch (error) {
        return { ref, ok: false, error };
      } finally {
        progress.tick(refLabel(ref));
      }
    });
  } finally {
    progress.stop();
  }
}

/** Prints the failures on stderr and fails the command when there is any. */
export function failOnErrors<R>(ctx: CliContext, outcomes: readonly Outcome<R>[], what: string): void {
  const failed = outcomes.filter((o): o is Extract<Outcome<R>, { ok: false }> => !o.ok);
  if (failed.length === 0) return;
  for (const f of failed) ctx.err(`${refLabel(f.ref)}  failed: ${describeFailure(f.error)}`);
  throw new CommandFailedError(
    outcomes.length === 1 ? `${what} failed` : `${what} failed for ${failed.length} of ${outcomes.length} messages`,
  );
}
