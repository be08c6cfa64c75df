/**
 * How every caller starts a message's actor (an Update or signal with start): its workflow id, task
 * queue, input, `MessageKind` search attribute, and the static summary and details the Web UI shows.
 */
import { TypedSearchAttributes } from '@temporalio/common';
import { actorStartMetadata } from '../shared/actorText';
import { MessageKindAttr } from '../shared/searchAttributes';
import type { MessageKind, MessageRef } from '../shared/types';
import { lifecycleWorkflowId, TASK_QUEUE } from '../shared/workflowId';

export function actorStartOptions(ref: MessageRef) {
  return {
    workflowId: lifecycleWorkflowId(ref),
    taskQueue: TASK_QUEUE,
    args: [{ kind: ref.kind, id: ref.id }] as [{ kind: MessageKind; id: string }],
    typedSearchAttributes: new TypedSearchAttributes([{ key: MessageKindAttr, value: ref.kind }]),
    ...actorStartMetadata(ref),
  };
}
