/**
 * Runs in every worker: signals `lateInteractions` to the actors ingestion noted in `late_wakeups`
 * (src/storage/lateWakeups.ts), so that an expired actor can sleep without a timer. Signals first and
 * records it after: a crash between the two only signals again, which the actor takes as the same
 * wake-up. Replicas may each signal a message once per interval; nothing else is shared between them.
 */
import type { Logger } from 'pino';
import type { Db } from '../db/knex';
import { databaseNow, dueWakeups, forgetSettledWakeups, markSignalled } from '../storage/lateWakeups';
import type { LifecycleClient } from './lifecycleClient';

export interface LateWakeupDispatcherOptions {
  /** How often the table is read. */
  pollMs: number;
  /** At most one signal per message per this many seconds (the cleanup interval). */
  intervalSeconds: number;
  /** Messages signalled per read. */
  batch?: number;
}

export class LateWakeupDispatcher {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly db: Db,
    private readonly lifecycle: Pick<LifecycleClient, 'lateInteractions'>,
    private readonly log: Logger,
    private readonly opts: LateWakeupDispatcherOptions,
  ) {}

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  /** One pass: signals every due message (in batches) and forgets settled ones. Returns how many were signalled. */
  async runOnce(): Promise<number> {
    const batch = this.opts.batch ?? 200;
    let signalled = 0;
    for (;;) {
      const at = await databaseNow(this.db);
      const due = await dueWakeups(this.db, this.opts.intervalSeconds, batch);
      let failed = 0;
      await Promise.all(
        due.map(async (ref) => {
          try {
            await this.lifecycle.lateInteractions(ref.kind, ref.id);
            await markSignalled(this.db, ref, at);
            signalled += 1;
          } catch (err) {
            failed += 1;
            this.log.warn(
              { kind: ref.kind, id: ref.id, error: err instanceof Error ? err.message : String(err) },
              'late interactions: could not wake the actor; trying again',
            );
          }
        }),
      );
      // A batch that failed in part is read again at the next pass, not now.
      if (due.length < batch || failed > 0 || this.stopped) break;
    }
    await forgetSettledWakeups(this.db, this.opts.intervalSeconds);
    return signalled;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.runOnce()
        .then((n) => {
          if (n > 0) this.log.debug({ signalled: n }, 'late interactions: actors woken');
        })
        .catch((err: unknown) =>
          this.log.warn({ error: err instanceof Error ? err.message : String(err) }, 'late interactions: pass failed; trying again'),
        )
        .finally(() => {
          this.running = null;
          this.schedule(this.opts.pollMs);
        });
    }, ms);
    this.timer.unref();
  }
}
