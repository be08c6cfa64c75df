/**
 * `interaction-data archiving pause|resume|status` and the API's /v1/archiving: the brake's switch
 * (src/storage/archivingPause.ts) and, on resume, a wake-up for every actor the pause held, so their
 * data moves now rather than at their next recheck (ARCHIVING_PAUSE_RECHECK).
 */
import type { Db } from '../db/knex';
import type { MessageRef } from '../shared/types';
import {
  countHeldMessages,
  forgetHolds,
  heldMessages,
  readArchivingPause,
  setArchivingPause,
  type ArchivingPause,
} from '../storage/archivingPause';

export interface ArchivingStatus extends ArchivingPause {
  /** Actors keeping due data available because of the pause (woken when it resumes). */
  heldMessages: number;
}

export interface ResumeReport extends ArchivingStatus {
  /** Held actors told to count their references again now. */
  woken: number;
  /** Held actors that could not be told; they look again at their recheck. */
  notWoken: number;
}

/** Wakes one held actor (the lifecycle client's referencesChanged signal). */
export type WakeHeld = (ref: MessageRef) => Promise<void>;

const WAKE_BATCH = 200;
const WAKES_AT_ONCE = 16;

export async function archivingStatusOf(db: Db): Promise<ArchivingStatus> {
  return { ...(await readArchivingPause(db)), heldMessages: await countHeldMessages(db) };
}

export async function archivingPause(db: Db, by: string, reason: string | null): Promise<ArchivingStatus> {
  await setArchivingPause(db, { paused: true, by, reason });
  return archivingStatusOf(db);
}

/** Resumes archiving, then wakes the held actors batch by batch; `onWoken` reports progress. */
export async function archivingResume(db: Db, by: string, wake: WakeHeld | null, onWoken?: (woken: number) => void): Promise<ResumeReport> {
  await setArchivingPause(db, { paused: false, by, reason: null });
  let woken = 0;
  let notWoken = 0;
  if (wake) {
    for (;;) {
      const batch = await heldMessages(db, WAKE_BATCH);
      if (batch.length === 0) break;
      const done: MessageRef[] = [];
      for (let i = 0; i < batch.length; i += WAKES_AT_ONCE) {
        const slice = batch.slice(i, i + WAKES_AT_ONCE);
        const outcomes = await Promise.allSettled(slice.map((ref) => wake(ref)));
        outcomes.forEach((o, j) => (o.status === 'fulfilled' ? done.push(slice[j]) : (notWoken += 1)));
      }
      // A hold is only a hint to wake: one that could not be delivered is forgotten too, since its actor
      // looks again at its recheck anyway, and keeping it would make this loop read it forever.
      await forgetHolds(db, batch);
      woken += done.length;
      onWoken?.(woken);
    }
  }
  return { ...(await archivingStatusOf(db)), woken, notWoken };
}
