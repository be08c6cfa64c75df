/**
 * Bundles the workflow code in a worker thread. Webpack and its compiler stay loaded, and the heap
 * they grew stays allocated, in whatever isolate ran them: bundled in the worker's own thread they
 * cost it about a hundred megabytes for its whole life. A thread's isolate is freed when it ends.
 */
import { Worker as Thread } from 'node:worker_threads';
import type { WorkflowBundle } from '@temporalio/worker';

const BUNDLER = `
const { parentPort, workerData } = require('node:worker_threads');
const { bundleWorkflowCode } = require(workerData.temporalWorker);
const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };
bundleWorkflowCode({ workflowsPath: workerData.workflowsPath, logger: quiet }).then(
  (bundle) => parentPort.postMessage({ code: bundle.code }),
  (err) => parentPort.postMessage({ error: (err && err.stack) || String(err) }),
);
`;

export async function bundleWorkflowsInThread(workflowsPath: string): Promise<WorkflowBundle> {
  const thread = new Thread(BUNDLER, {
    eval: true,
    workerData: { workflowsPath, temporalWorker: require.resolve('@temporalio/worker') },
  });
  try {
    const reply = await new Promise<{ code?: string; error?: string }>((resolve, reject) => {
      thread.once('message', resolve);
      thread.once('error', reject);
      thread.once('exit', (code) => reject(new Error(`the workflow bundler exited (${code}) without a bundle`)));
    });
    if (reply.error !== undefined || reply.code === undefined) throw new Error(`bundling the workflow code failed: ${reply.error ?? 'no code'}`);
    return { code: reply.code };
  } finally {
    await thread.terminate();
  }
}
