/**
 * The first check of every workflow: one started with input it cannot run on (by hand from the Temporal
 * CLI or Web UI, say) fails at once, saying what it needs, instead of failing its workflow task on every
 * attempt for ever.
 */
import { ApplicationFailure } from '@temporalio/workflow';

export function requireInput(ok: boolean, workflowType: string, needs: string): void {
  if (ok) return;
  throw ApplicationFailure.create({ type: 'BadWorkflowInput', message: `${workflowType} needs ${needs} as its input`, nonRetryable: true });
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

export function isText(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0;
}
