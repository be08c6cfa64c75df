/**
 * InnoDB resolves a deadlock by rolling back one of the transactions involved, entirely; running the
 * same idempotent statement or transaction again is the documented remedy. The archive and restore
 * steps are written to be idempotent, so they retry here a few times before failing the activity.
 */
import { backOff } from 'exponential-backoff';

const DEADLOCK_CODES = new Set(['ER_LOCK_DEADLOCK', 'ER_LOCK_WAIT_TIMEOUT']);

export function isDeadlock(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && DEADLOCK_CODES.has(code);
}

export function retryOnDeadlock<T>(fn: () => Promise<T>, attempts = 5): Promise<T> {
  // A short, growing, jittered pause lets the transaction that won finish first.
  return backOff(fn, { numOfAttempts: attempts, startingDelay: 40, jitter: 'full', retry: isDeadlock });
}
