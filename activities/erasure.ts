/**
 * Activities of a user's erasure: the request workflow's (record it, ask each message's actor, finish)
 * and the actor's own (erase the user from its message). Each is idempotent: the request is recorded
 * once per id, an actor queues a request id once, and erasing a message again finds nothing left.
 */
import { Context } from '@temporalio/activity';
import { WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { StoreNotConfiguredError, type ArchiveStores } from '../src/archive/store';
import type { Db } from '../src/db/knex';
import {
  beginErasure,
  finishErasure,
  pendingErasureMessages,
  recordMessageErased,
  type ErasureBegun,
  type ErasureCounts,
  type ErasureView,
} from '../src/privacy/erasureRecords';
import { eraseUserFromMessage } from '../src/privacy/eraseMessage';
import type { EraseUserRequest, MessageRef } from '../src/shared/types';
import { ChunkIntegrityError } from '../src/storage/chunkCodec';
import { activityAttemptToken } from '../src/storage/fence';
import { eraseUserUpdate } from '../workflows/definitions';
import { startActorOperation } from './bulkRestore';
import { heartbeatWhile } from './heartbeat';
import type { LifecycleActivities } from './types';

export interface ErasureActivities {
  beginErasure(input: { requestId: string; userId: string; requestedBy: string }): Promise<ErasureBegun>;
  pendingErasureMessages(input: { requestId: string; limit: number }): Promise<MessageRef[]>;
  /** Asks each message's actor (started if it is not running) to erase the user; returns once each has queued it. */
  askActorsToErase(input: { refs: MessageRef[]; request: EraseUserRequest }): Promise<void>;
  finishErasure(input: { requestId: string }): Promise<ErasureView>;
}

export interface ErasureActivityDeps {
  db: Db;
  temporal: Client;
  stores: ArchiveStores;
}

/** The activity shows it is alive this often while actors answer. */
const ASK_HEARTBEAT_MS = 5_000;

export function createErasureActivities(deps: ErasureActivityDeps): ErasureActivities & Pick<LifecycleActivities, 'eraseUserInMessage'> {
  const { db, temporal, stores } = deps;
  return {
    beginErasure: (input) => beginErasure(db, input),
    pendingErasureMessages: ({ requestId, limit }) => pendingErasureMessages(db, requestId, limit),
    finishErasure: ({ requestId }) => finishErasure(db, requestId),

    async askActorsToErase({ refs, request }) {
      const ctx = Context.current();
      const beat = setInterval(() => ctx.heartbeat(), ASK_HEARTBEAT_MS);
      try {
        await Promise.all(
          refs.map(async (ref) => {
            try {
              await temporal.workflow.executeUpdateWithStart(eraseUserUpdate, {
                args: [request],
                startWorkflowOperation: startActorOperation(ref),
              });
            } catch (err) {
              // Refused by the actor's validator: no retry changes that.
              if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure) {
                throw ApplicationFailure.create({ type: 'RequestRefused', message: err.cause.message, nonRetryable: true });
              }
              throw err;
            }
          }),
        );
      } finally {
        clearInterval(beat);
      }
    },

    async eraseUserInMessage({ kind, id, requestId, userId, erasedThrough }) {
      const ctx = Context.current();
      const ref: MessageRef = { kind, id };
      try {
        const counts = await heartbeatWhile<ErasureCounts, ErasureCounts>(ctx, undefined, (report) =>
          eraseUserFromMessage(
            db,
            stores,
            { ref, userId, erasedThrough, requestId },
            { onChunk: (c) => report(c), fence: { token: activityAttemptToken(ctx.info) } },
          ),
        );
        await recordMessageErased(db, requestId, ref, { counts });
        return { ok: true };
      } catch (err) {
        // What a retry cannot fix: a chunk that is not what its catalog row says, a store with no settings.
        if (err instanceof ChunkIntegrityError || err instanceof StoreNotConfiguredError) {
          ctx.log.error('erasure of a message cannot proceed', { kind, id, requestId, error: err.message });
          await recordMessageErased(db, requestId, ref, { error: `${err.name}: ${err.message}` });
          return { ok: false };
        }
        throw err;
      }
    },
  };
}
