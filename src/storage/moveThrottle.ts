/**
 * Between two chunks of an archive or restore, the move gives way to the database's own traffic, as
 * gh-ost and pt-archiver do: it sleeps in proportion to the time the chunk took (gh-ost's
 * `--nice-ratio`, pt-archiver's `--sleep-coef`), and while MySQL's `Threads_running` is above a limit
 * (gh-ost's `--max-load=Threads_running=N`) it backs off and looks again, longer each time. An archive
 * also stops here when archiving has been paused (src/storage/archivingPause.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Db } from '../db/knex';
import { ArchivingPausedError, readArchivingPause } from './archivingPause';

export interface MoveThrottleSettings {
  /** Back off while the server's Threads_running is above this; 0 never looks. */
  maxThreadsRunning: number;
  /** Sleep this many times as long as the chunk took, after each chunk; 0 never sleeps. */
  niceRatio: number;
  /** The longest single back-off; they double from a tenth of a second up to it. */
  maxBackoffMs: number;
}

export const DEFAULT_MOVE_THROTTLE: MoveThrottleSettings = { maxThreadsRunning: 16, niceRatio: 0.5, maxBackoffMs: 5_000 };

/** The back-off after `waits` consecutive looks found the server busy: 100 ms doubling, at most `maxMs`. */
export function backoffMs(waits: number, maxMs: number): number {
  return Math.min(maxMs, 100 * 2 ** Math.min(waits, 20));
}

/** The pause after a chunk of `chunkMs`: the nice ratio's share, never more than a minute. */
export function niceSleepMs(chunkMs: number, niceRatio: number): number {
  return Math.min(60_000, Math.max(0, Math.round(chunkMs * niceRatio)));
}

/** Threads running in the server now, the one counting them included. */
export async function threadsRunning(db: Db): Promise<number> {
  const [rows] = (await db.raw(`SHOW GLOBAL STATUS LIKE 'Threads_running'`)) as [{ Value: string }[]];
  return Number(rows[0]?.Value ?? 0);
}

export interface ThrottleWaits {
  /** Called with each wait before it starts: why, and for how long. */
  onWait?: (why: 'nice' | 'load', ms: number) => void;
  /** Called during long waits, so the activity's heartbeat carries on. */
  keepAlive?: () => void;
  signal?: AbortSignal;
}

export class MoveThrottle {
  private chunkStartedAt = performance.now();

  constructor(
    private readonly db: Db,
    private readonly settings: MoveThrottleSettings,
    /** An archive obeys the pause; a restore does not. */
    private readonly move: 'archive' | 'restore',
    private readonly waits: ThrottleWaits = {},
  ) {}

  /** After each chunk: stop if archiving is paused, then give way as the settings say. */
  async afterChunk(): Promise<void> {
    const chunkMs = performance.now() - this.chunkStartedAt;
    if (this.move === 'archive') {
      const pause = await readArchivingPause(this.db);
      if (pause.paused) throw new ArchivingPausedError(pause);
    }
    const nice = niceSleepMs(chunkMs, this.settings.niceRatio);
    if (nice > 0) await this.wait('nice', nice);
    if (this.settings.maxThreadsRunning > 0) {
      for (let waits = 0; (await threadsRunning(this.db)) > this.settings.maxThreadsRunning; waits += 1) {
        await this.wait('load', backoffMs(waits, this.settings.maxBackoffMs));
      }
    }
    this.chunkStartedAt = performance.now();
  }

  private async wait(why: 'nice' | 'load', ms: number): Promise<void> {
    this.waits.onWait?.(why, ms);
    this.waits.keepAlive?.();
    await sleep(ms, undefined, { signal: this.waits.signal }).catch(() => undefined);
  }
}
