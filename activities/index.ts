/**
 * Activities of the lifecycle actor. Thin: each delegates to src/ and is idempotent, because Temporal
 * may run any of them more than once. The long ones heartbeat their cursor (on progress, and on a timer
 * while a step is slow) and resume from it.
 */
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { Config } from '../src/config';
import type { Db } from '../src/db/knex';
import type { RestoreNotifier } from '../src/email/restoreNotifier';
import { addDuration } from '../src/shared/duration';
import { archiveMessage, type ArchiveCursor } from '../src/storage/archiver';
import { restoreMessage, type RestoreCursor } from '../src/storage/restorer';
import { countActiveReferences } from '../src/storage/references';
import { loadMessageDetails, recordAvailability } from '../src/storage/availability';
import type { SummaryMailer } from '../src/bulk/summaryEmail';
import type { LifecycleActivities, PolicyActivities } from './types';
import { createBulkRestoreActivities, type BulkRestoreActivities } from './bulkRestore';
import { heartbeatWhile } from './heartbeat';
import { createActorRecordActivities } from './actorRecords';

export interface ActivityDeps {
  db: Db;
  config: Pick<Config, 'interactionDataTtl' | 'cleanupInterval' | 'archiveChunkRows' | 'restoreParallelChunks' | 'restoreInsertConnections'>;
  notifier: RestoreNotifier;
  /** The bulk-restore activities signal and query the actors through a client of the worker's namespace. */
  temporal: Client;
  summaryMailer: SummaryMailer;
}

export function createActivities(deps: ActivityDeps): LifecycleActivities & PolicyActivities & BulkRestoreActivities {
  const { db, config, notifier } = deps;
  return {
    ...createBulkRestoreActivities({ db, temporal: deps.temporal, mailer: deps.summaryMailer }),
    ...createActorRecordActivities(db),
    async planDeadline({ from, purpose }) {
      const d = purpose === 'expiry' ? config.interactionDataTtl : config.cleanupInterval;
      return addDuration(new Date(from), d).toISOString();
    },

    loadMessageDetails: (ref) => loadMessageDetails(db, ref),
    recordAvailability: (record) => recordAvailability(db, record),
    countActiveReferences: (ref) => countActiveReferences(db, ref),

    async archiveInteractions({ kind, id, generation }) {
      const ctx = Context.current();
      const resumeFrom = ctx.info.heartbeatDetails as ArchiveCursor | undefined;
      return heartbeatWhile(ctx, resumeFrom, (report) =>
        archiveMessage(db, { kind, id }, generation, {
          chunkRows: config.archiveChunkRows,
          resumeFrom,
          onProgress: (cursor, moved) => {
            report(cursor);
            ctx.log.debug('archived chunk', { lastId: cursor.lastId, moved });
          },
        }),
      );
    },

    async restoreInteractions({ kind, id, generation }) {
      const ctx = Context.current();
      const resumeFrom = ctx.info.heartbeatDetails as RestoreCursor | undefined;
      return heartbeatWhile(ctx, resumeFrom, (report) =>
        restoreMessage(db, { kind, id }, generation, {
          parallelInserts: config.restoreParallelChunks,
          insertConnections: config.restoreInsertConnections,
          resumeFrom,
          onProgress: (cursor, restored) => {
            report(cursor);
            ctx.log.debug('restored chunk', { seq: cursor.seq, restored });
          },
        }),
      );
    },

    sendRestoreEmail: (email) => notifier.send(email),
  };
}
