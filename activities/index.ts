/**
 * Activities of the lifecycle actor. Thin: each delegates to src/ and is idempotent, because Temporal
 * may run any of them more than once. The long ones heartbeat their cursor (on progress, and on a timer
 * while a step is slow) and resume from it.
 */
import { callbacks, emails, moveWaits, rowsMoved, timedMove } from '../src/metrics/metrics';
import { deliverCallback } from '../src/callbacks/deliver';
import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { Client } from '@temporalio/client';
import { mysqlOnly } from '../src/archive/mysqlStore';
import type { ArchiveStores } from '../src/archive/store';
import type { Config } from '../src/config';
import type { Db } from '../src/db/knex';
import type { RestoreNotifier } from '../src/email/restoreNotifier';
import { addDuration } from '../src/shared/duration';
import { ArchiveConflictError, archiveMessage, type ArchiveCursor } from '../src/storage/archiver';
import { ChunkIntegrityError } from '../src/storage/chunkCodec';
import { activityAttemptToken, StaleAttemptError } from '../src/storage/fence';
import { restoreMessage, type RestoreCursor } from '../src/storage/restorer';
import { messageHotTables } from '../src/storage/hotTables';
import { countActiveReferences, findActiveReferences } from '../src/storage/references';
import { ArchivingPausedError, forgetHolds, holdIfPaused, readArchivingPause } from '../src/storage/archivingPause';
import { MoveThrottle } from '../src/storage/moveThrottle';
import { loadMessageDetails, recordAvailability } from '../src/storage/availability';
import type { SummaryMailer } from '../src/bulk/summaryEmail';
import type { ArchiveInput, ArchiveOutcome, DeadlinePurpose, LifecycleActivities, PolicyActivities } from './types';
import { createBulkRestoreActivities, type BulkRestoreActivities } from './bulkRestore';
import { heartbeatWhile } from './heartbeat';
import { createActorRecordActivities } from './actorRecords';
import { createErasureActivities, type ErasureActivities } from './erasure';

export interface ActivityDeps {
  db: Db;
  config: Pick<
    Config,
    | 'interactionDataTtl'
    | 'cleanupInterval'
    | 'archiveChunkRows'
    | 'restoreParallelChunks'
    | 'restoreInsertConnections'
    | 'moveThrottle'
    | 'archivingPauseRecheck'
    | 'callbackSigningSecret'
  >;
  notifier: RestoreNotifier;
  /** The bulk-restore activities signal and query the actors through a client of the worker's namespace. */
  temporal: Client;
  summaryMailer: SummaryMailer;
  /** Where archives go and are read from (src/archive/); MySQL alone when not given. */
  stores?: ArchiveStores;
}

export function createActivities(deps: ActivityDeps): LifecycleActivities & PolicyActivities & BulkRestoreActivities & ErasureActivities {
  const { db, config, notifier } = deps;
  const stores = deps.stores ?? mysqlOnly();
  /** The one rule for deadlines: expiry is a TTL after `from`, the next cleanup check or sweep an interval after it. */
  const deadline = (from: string, purpose: DeadlinePurpose): string =>
    addDuration(new Date(from), purpose === 'expiry' ? config.interactionDataTtl : config.cleanupInterval).toISOString();

  /** The throttle between a move's chunks, which keeps the activity's heartbeat going while it waits. */
  const throttleFor = (ctx: Context, kind: 'archive' | 'restore', keepAlive: () => void) =>
    new MoveThrottle(db, config.moveThrottle, kind, {
      keepAlive,
      signal: ctx.cancellationSignal,
      onWait: (why, ms) => moveWaits.inc({ move: kind, why }, ms / 1000),
    });

  /** The archive or sweep activity: the brake first. */
  async function archiveInteractions(input: ArchiveInput): Promise<ArchiveOutcome> {
    await failIfPaused();
    return archive(input);
  }

  /** Moves the hot rows into the generation; the caller has read the brake. */
  async function archive(input: ArchiveInput): Promise<ArchiveOutcome> {
    const { kind, id, generation } = input;
    const ctx = Context.current();
    const resumeFrom = ctx.info.heartbeatDetails as ArchiveCursor | undefined;
    const manifest = await move(ctx, 'archive', input, (token) =>
      heartbeatWhile(ctx, resumeFrom, (report) => {
        let latest = resumeFrom;
        const throttle = throttleFor(ctx, 'archive', () => latest && report(latest));
        return archiveMessage(db, { kind, id }, generation, {
          chunkRows: config.archiveChunkRows,
          stores,
          resumeFrom,
          fence: { token },
          onProgress: async (cursor, moved, chunkRows) => {
            rowsMoved.inc({ move: 'archive' }, chunkRows);
            latest = cursor;
            report(cursor);
            ctx.log.debug('archived chunk', { lastId: cursor.lastId, moved });
            stopIfCancelled(ctx);
            await throttle.afterChunk();
            stopIfCancelled(ctx);
          },
        });
      }),
    );
    await forgetHolds(db, [{ kind, id }]);
    // Read after the move: a table made current since it began holds late rows the actor must come
    // back for. One still being made is not counted: whatever writes it will find the data unavailable
    // and note a wake-up (src/storage/lateWakeups.ts).
    const hotTableLeft = (await messageHotTables(db, { kind, id })).length > 0;
    return { ...manifest, hotTableLeft, nextSweepAt: deadline(new Date().toISOString(), 'cleanup') };
  }

  /** Before an archive starts: a paused brake fails the attempt, to be retried once the recheck interval has passed. */
  async function failIfPaused(): Promise<void> {
    const pause = await readArchivingPause(db);
    if (pause.paused) throw pausedFailure(new ArchivingPausedError(pause), config.archivingPauseRecheck.milliseconds);
  }

  return {
    ...createBulkRestoreActivities({ db, temporal: deps.temporal, mailer: deps.summaryMailer }),
    ...createErasureActivities({ db, temporal: deps.temporal, stores }),
    ...createActorRecordActivities(db),
    planDeadline: ({ from, purpose }) => Promise.resolve(deadline(from, purpose)),

    loadMessageDetails: (ref) => loadMessageDetails(db, ref),
    recordAvailability: (record) => recordAvailability(db, record),
    async recordStop({ kind, id, stoppedAt, generation, revision }) {
      const expiresAt = deadline(stoppedAt, 'expiry');
      await recordAvailability(db, { kind, id, state: 'stopped', available: true, stoppedAt, expiresAt, generation, revision });
      return { expiresAt };
    },
    countActiveReferences: (ref) => countActiveReferences(db, ref),
    async countReferences(ref) {
      const { count, audiences } = await findActiveReferences(db, ref);
      const checkedAt = new Date().toISOString();
      const counted = { count, audiences, checkedAt, nextCheckAt: deadline(checkedAt, 'cleanup') };
      if (count > 0) return counted;
      const recheckAt = addDuration(new Date(checkedAt), config.archivingPauseRecheck).toISOString();
      const archivingHeld = await holdIfPaused(db, ref, recheckAt);
      return archivingHeld ? { ...counted, archivingHeld } : counted;
    },

    archiveInteractions,

    async expireMessage(input) {
      const { kind, id, generation, stoppedAt, revision } = input;
      const record = { kind, id, available: false, stoppedAt, expiresAt: null, generation };
      // Paused since the actor counted its references: nothing is recorded or moved until it resumes.
      await failIfPaused();
      // The row says unavailable before a single row moves, and expired once all have (as the actor's own records did).
      await recordAvailability(db, { ...record, state: 'archiving', revision });
      const outcome = await archive(input);
      await recordAvailability(db, { ...record, state: 'expired', revision: revision + 1 });
      return { ...outcome, nextSweepAt: deadline(new Date().toISOString(), 'cleanup') };
    },

    async restoreInteractions(input) {
      const { kind, id, generation } = input;
      const ctx = Context.current();
      const resumeFrom = ctx.info.heartbeatDetails as RestoreCursor | undefined;
      const summary = await move(ctx, 'restore', input, (token) =>
        heartbeatWhile(ctx, resumeFrom, (report) => {
          let latest = resumeFrom;
          const throttle = throttleFor(ctx, 'restore', () => latest && report(latest));
          return restoreMessage(db, { kind, id }, generation, {
            parallelInserts: config.restoreParallelChunks,
            insertConnections: config.restoreInsertConnections,
            stores,
            resumeFrom,
            fence: { token },
            onProgress: async (cursor, restored, chunkRows) => {
              rowsMoved.inc({ move: 'restore' }, chunkRows);
              latest = cursor;
              report(cursor);
              ctx.log.debug('restored chunk', { seq: cursor.seq, restored });
              stopIfCancelled(ctx);
              await throttle.afterChunk();
              stopIfCancelled(ctx);
            },
          });
        }),
      );
      // Restored data is like data of a message that has just stopped: another full TTL before it expires.
      const completedAt = new Date().toISOString();
      return { ...summary, completedAt, expiresAt: deadline(completedAt, 'expiry') };
    },

    async deliverCallback(delivery) {
      if (!config.callbackSigningSecret) {
        // Retried: a worker started without the secret is a deployment to fix, and the callback waits for it.
        throw ApplicationFailure.create({ type: 'CallbackNotSigned', message: 'CALLBACK_SIGNING_SECRET is not set in this worker' });
      }
      const status = await deliverCallback(delivery, config.callbackSigningSecret);
      callbacks.inc({ outcome: 'delivered' });
      Context.current().log.info('callback delivered', { url: delivery.url, deliveryId: delivery.deliveryId, status });
    },

    async sendRestoreEmail(email) {
      try {
        await notifier.send(email);
        emails.inc({ outcome: 'sent' });
      } catch (err) {
        emails.inc({ outcome: 'failed' });
        throw err;
      }
    },
  };
}

/**
 * Between chunks: a cancelled attempt stops there, its last chunk committed and heartbeated, and ends
 * with the CancelledFailure (as in temporalio/samples-typescript activities-cancellation-heartbeating).
 * The SDK delivers a cancellation on a heartbeat: the workflow cancelled the step, the worker is
 * shutting down, or the server gave up on this attempt (its heartbeat timed out, TIMED_OUT) and has
 * started the next one, which this attempt should leave the message to as soon as it can.
 */
function stopIfCancelled(ctx: Context): void {
  if (ctx.cancellationSignal.aborted)
    throw ctx.cancellationSignal.reason instanceof Error ? ctx.cancellationSignal.reason : new CancelledFailure('cancelled');
}

/**
 * Runs one attempt of a move with its fence token, derived from Temporal's attempt so that attempt N+1
 * supersedes attempt N and a later activity of the run an earlier one (src/storage/fence.ts). Failures
 * no retry can fix leave as non-retryable ApplicationFailures of the error's own type, which the
 * actor shows as its `problem` until an operator fixes the cause and retries.
 */
async function move<T>(ctx: Context, kind: 'archive' | 'restore', input: ArchiveInput, run: (token: string) => Promise<T>): Promise<T> {
  const token = activityAttemptToken(ctx.info);
  try {
    return await timedMove(kind, () => run(token));
  } catch (err) {
    if (err instanceof CancelledFailure) {
      ctx.log.warn(`${kind} attempt cancelled between chunks`, { reason: err.message, token });
      throw err;
    }
    if (err instanceof ArchivingPausedError) throw pausedFailure(err, PAUSED_RETRY_MS);
    const failure = problemFailure(err, kind, input, token, ctx.info.attempt);
    if (failure) throw failure;
    throw err;
  }
}

/** How soon an archive stopped mid-way by the pause looks again: its next attempt resumes from its cursor. */
const PAUSED_RETRY_MS = 30_000;

/**
 * A retryable failure: Temporal keeps the attempt's heartbeated cursor for the next one, and the Web UI
 * shows this message as the pending activity's last failure while archiving stays paused.
 */
function pausedFailure(err: ArchivingPausedError, retryMs: number): ApplicationFailure {
  return ApplicationFailure.create({ type: 'ArchivingPaused', message: err.message, nextRetryDelay: retryMs, cause: err });
}

/** What an operator reads in the actor's problem: what happened, what was kept, what to do. */
export function problemFailure(
  err: unknown,
  kind: 'archive' | 'restore',
  input: ArchiveInput,
  token: string,
  attempt: number,
): ApplicationFailure | null {
  const what = `${kind} of ${input.kind}:${input.id} generation ${input.generation}`;
  const retry = `then \`interaction-data retry ${input.kind}:${input.id}\``;
  let message: string;
  // The types the actor recognises (PROBLEM_FAILURE_TYPES in workflows/lifecycle.ts), spelt out.
  let type: 'ChunkIntegrityError' | 'ArchiveConflictError' | 'StaleAttemptError';
  if (err instanceof ChunkIntegrityError) {
    type = 'ChunkIntegrityError';
    message =
      `${what} cannot proceed: ${err.message}. Nothing was deleted: the generation's long-term copy (its catalog rows in ` +
      `archive_chunks and each chunk's bytes, in the row or in its object) and every row already in the hot store are kept. Find ` +
      `the chunk or row that differs, repair it (an object from a bucket version or backup) or the data it came from, ${retry}.`;
  } else if (err instanceof ArchiveConflictError) {
    type = 'ArchiveConflictError';
    message =
      `${what} cannot proceed: ${err.message}. Nothing was dropped: the message's table and its stored chunks are kept. Compare the ` +
      `table's rows with the generation's chunks in archive_chunks (they must account for every row), correct what is wrong, ${retry}.`;
  } else if (err instanceof StaleAttemptError) {
    type = 'StaleAttemptError';
    message =
      `${what}: ${err.message}. Temporal discards a superseded attempt's result, so another attempt (another run of this actor after ` +
      `a reset or terminate, or a second actor for the message) moved the message meanwhile. Check the actor's status and the ` +
      `message's rows in archive_manifests and move_fences; if this actor should carry on, ${retry}.`;
  } else {
    return null;
  }
  return ApplicationFailure.create({
    type,
    message,
    nonRetryable: true,
    details: [{ kind: input.kind, id: input.id, generation: input.generation, move: kind, attempt, token, error: err.message }],
    cause: err,
  });
}
