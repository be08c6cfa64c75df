/**
 * Bundles the workflow code in a short-lived child process. Webpack loads SWC's native compiler, and
 * a native library once loaded stays mapped in its process, as do the malloc arenas the compile grew:
 * bundled in the worker's own process, even in a thread that then ends, they would stay with it for
 * its whole life (the idle worker's memory either way is in docs/BENCHMARKS.md). A child's memory goes
 * back to the system when it exits, and the worker keeps only the bundle's text. A bundle built
 * beforehand (`npm run build`, or the test runner once per run) skips all of this.
 */
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { WorkflowBundle, WorkflowBundleOption } from '@temporalio/worker';

const BUNDLER = `
const { bundleWorkflowCode } = require(process.env.TEMPORAL_WORKER_MODULE);
const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };
bundleWorkflowCode({ workflowsPath: process.env.WORKFLOWS_PATH, logger: quiet }).then(
  (bundle) => process.send({ code: bundle.code }, () => process.disconnect()),
  (err) => process.send({ error: (err && err.stack) || String(err) }, () => process.disconnect()),
);
`;

export async function bundleWorkflowsInChild(workflowsPath: string): Promise<WorkflowBundle> {
  // Plain node, without the parent's loader flags: the bundler compiles the TypeScript itself.
  const child = spawn(process.execPath, ['-e', BUNDLER], {
    env: { ...process.env, WORKFLOWS_PATH: workflowsPath, TEMPORAL_WORKER_MODULE: require.resolve('@temporalio/worker') },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (text: string) => {
    stderr = (stderr + text).slice(-4_000);
  });
  const reply = await new Promise<{ code?: string; error?: string }>((resolve, reject) => {
    child.once('message', (message) => resolve(message as { code?: string; error?: string }));
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      reject(new Error(`the workflow bundler exited (${signal ?? code}) without a bundle${stderr ? `: ${stderr.trim()}` : ''}`)),
    );
  }).finally(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill();
  });
  if (reply.error !== undefined || reply.code === undefined)
    throw new Error(`bundling the workflow code failed: ${reply.error ?? 'no code'}`);
  return { code: reply.code };
}

/** The worker's workflow code: the bundle built beforehand if there is one, else the sources bundled now. */
export async function workflowBundleFor(prebuiltPath: string | null, workflowsPath: string): Promise<WorkflowBundleOption> {
  return prebuiltPath ? { codePath: prebuiltPath } : bundleWorkflowsInChild(workflowsPath);
}

/** Bundles the workflow sources into one file a worker can load with WORKFLOW_BUNDLE_PATH. */
export async function writeWorkflowBundle(workflowsPath: string, outFile: string): Promise<void> {
  const bundle = await bundleWorkflowsInChild(workflowsPath);
  await mkdir(path.dirname(outFile), { recursive: true });
  await writeFile(outFile, bundle.code);
}
