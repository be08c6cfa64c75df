/**
 * Signals and queries of the lifecycle actor, defined once and imported by the workflow and by every
 * caller (client module, API, CLI), so names and payload types cannot drift apart.
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type {
  LifecycleStatus,
  MessageDetailsSignal,
  ReferencesChangedSignal,
  RestoreSignal,
  ResumeSignal,
  StopSignal,
} from '../src/shared/types';

export const stopSignal = defineSignal<[StopSignal]>('stop');
export const resumeSignal = defineSignal<[ResumeSignal]>('resume');
export const restoreSignal = defineSignal<[RestoreSignal]>('restore');
export const referencesChangedSignal = defineSignal<[ReferencesChangedSignal]>('referencesChanged');
/** Name or tags changed: keeps the MessageTags search attribute current. */
export const messageDetailsSignal = defineSignal<[MessageDetailsSignal]>('messageDetails');
export const statusQuery = defineQuery<LifecycleStatus>('status');
