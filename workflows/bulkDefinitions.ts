/**
 * Queries of the bulk-restore workflow, defined once and imported by the workflow and by every caller
 * (client module, API, CLI), so the name and the answer's type cannot drift apart.
 */
import { defineQuery } from '@temporalio/workflow';
import type { BulkRestoreProgress } from '../src/bulk/types';

/** Counters, phase and the first failures; the CLI's progress bar and GET /v1/restores/{request} read it. */
export const bulkRestoreProgressQuery = defineQuery<BulkRestoreProgress>('progress');
