/**
 * Activities through which the lifecycle actor checks rule 9 for its own audiences and keeps the restore
 * requests it accepted. Thin and idempotent, like the others.
 */
import type { Db } from '../src/db/knex';
import { DataPlaneError } from '../src/dataplane/errors';
import { guardOwnAudiences } from '../src/dataplane/messageService';
import { loadMessage } from '../src/dataplane/messages';
import { keepRestoreRequest, settleRestoreRequests } from '../src/storage/restoreRequests';
import type { LifecycleActivities } from './types';

export type ActorRecordActivities = Pick<LifecycleActivities, 'checkResumeGuards' | 'keepRestoreRequest' | 'settleRestoreRequests'>;

export function createActorRecordActivities(db: Db): ActorRecordActivities {
  return {
    async checkResumeGuards(ref) {
      const message = await loadMessage(db, ref);
      if (!message) return null; // defined nowhere here: no audiences of its own to check
      try {
        await guardOwnAudiences(db, [message], ref.kind);
        return null;
      } catch (err) {
        if (err instanceof DataPlaneError && err.statusCode === 409) return err.message;
        throw err;
      }
    },
    keepRestoreRequest: ({ kind, id, request }) => keepRestoreRequest(db, { kind, id }, request),
    settleRestoreRequests: ({ kind, id, requestIds }) => settleRestoreRequests(db, { kind, id }, requestIds),
  };
}
