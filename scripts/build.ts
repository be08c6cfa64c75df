/**
 * `npm run build`: the JavaScript that production runs, in dist/ (or the directory after --out-dir).
 *
 *   dist/src/worker.js, dist/src/api/server.js, dist/src/cli/main.js, dist/src/db/migrateCli.js
 *   dist/workflow-bundle.js   the workflow code, bundled; a worker loads it when WORKFLOW_BUNDLE_PATH names it
 *
 * tsc compiles what tsconfig.build.json lists (src/, workflows/, activities/, without the `npm start`
 * dev stack). The output directory is emptied first, so JavaScript of a deleted source never ships.
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { writeWorkflowBundle } from '../src/temporal/workflowBundle';

const root = path.resolve(__dirname, '..');

function outDirFrom(argv: string[]): string {
  const i = argv.indexOf('--out-dir');
  if (i === -1) return path.join(root, 'dist');
  const dir = argv[i + 1];
  if (!dir) throw new Error('--out-dir needs a directory');
  const out = path.resolve(dir);
  // The directory is deleted first: never the repository or a directory holding it.
  const fromOut = path.relative(out, root);
  if (!path.isAbsolute(fromOut) && fromOut !== '..' && !fromOut.startsWith(`..${path.sep}`)) {
    throw new Error(`--out-dir ${dir} holds the repository; name a directory of its own`);
  }
  return out;
}

function compile(outDir: string): Promise<void> {
  const tsc = spawn(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', outDir], {
    cwd: root,
    stdio: 'inherit',
  });
  return new Promise((resolve, reject) => {
    tsc.once('error', reject);
    tsc.once('exit', (code, signal) => (code === 0 ? resolve() : reject(new Error(`tsc failed (${signal ?? `exit code ${code}`})`))));
  });
}

async function build(outDir: string): Promise<void> {
  rmSync(outDir, { recursive: true, force: true });
  // Independent, and each mostly one core: side by side they take the time of the slower one.
  await Promise.all([compile(outDir), writeWorkflowBundle(require.resolve('../workflows'), path.join(outDir, 'workflow-bundle.js'))]);
}

async function main(argv: string[]): Promise<void> {
  const started = Date.now();
  const outDir = outDirFrom(argv);
  await build(outDir);
  console.error(`built ${path.relative(process.cwd(), outDir) || '.'} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
