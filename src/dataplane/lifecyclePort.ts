/** The lifecycle calls the data plane makes: the typed client, or a stand-in of the same shape. */
import type { LifecycleClient } from '../client/lifecycleClient';
import type { MessageRef } from '../shared/types';

/** Results are the actor's answers; the data plane only needs each call to succeed or throw. */
export interface DataPlaneLifecycle {
  stop(kind: unknown, id: unknown, payload?: { stoppedAt?: unknown }): Promise<unknown>;
  /** Throws ResumeRefusedError when the actor refuses: nothing may be marked active then. */
  resume(kind: unknown, id: unknown): Promise<unknown>;
  referencesChanged: LifecycleClient['referencesChanged'];
  updateDetails: LifecycleClient['updateDetails'];
}

export function isDataPlaneLifecycle(value: unknown): value is DataPlaneLifecycle {
  const v = value as Partial<Record<keyof DataPlaneLifecycle, unknown>> | null;
  return (
    v !== null &&
    typeof v === 'object' &&
    typeof v.stop === 'function' &&
    typeof v.resume === 'function' &&
    typeof v.referencesChanged === 'function' &&
    typeof v.updateDetails === 'function'
  );
}

export interface SignalReport {
  signalled: MessageRef[];
  /** referencesChanged signals that could not be delivered; the actor re-checks at its next cleanup cycle anyway. */
  failed: (MessageRef & { error: string })[];
}

/**
 * Tells each message's actor that the audiences referencing it changed. Sent after the change is
 * committed (the actor re-counts from MySQL); a failed signal only delays a retained message's expiry
 * to its next cleanup check, so it is reported, not fatal.
 */
export async function signalReferencesChanged(lifecycle: DataPlaneLifecycle, refs: readonly MessageRef[]): Promise<SignalReport> {
  const report: SignalReport = { signalled: [], failed: [] };
  await Promise.all(
    refs.map(async (r) => {
      try {
        await lifecycle.referencesChanged(r.kind, r.id);
        report.signalled.push(r);
      } catch (err) {
        report.failed.push({ ...r, error: err instanceof Error ? err.message : String(err) });
      }
    }),
  );
  return report;
}
