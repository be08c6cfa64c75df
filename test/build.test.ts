/**
 * The production build: `npm run build` writes JavaScript that plain node runs without tsx or
 * TypeScript, laid out as in the image (dist/ beside node_modules/ and bin/): the CLI answers, the
 * worker and API modules load, the migrate entry point runs, and the workflow bundle is there.
 * Builds into a directory of its own, so a dist/ in the checkout is neither used nor touched.
 *
 *   npx tsx scripts/test.ts test/build.test.ts
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { version } from '../package.json';

const REPO_ROOT = path.resolve(__dirname, '..');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Preloaded into every process below: loading tsx, TypeScript or any .ts file is an error. */
const NO_TYPESCRIPT = `
const Module = require('node:module');
const resolve = Module._resolveFilename;
Module._resolveFilename = function (...args) {
  const file = resolve.apply(this, args);
  if (/\\.[cm]?tsx?$/.test(file) || /[\\\\/]node_modules[\\\\/](tsx|typescript)[\\\\/]/.test(file)) {
    throw new Error('the production build loaded ' + file);
  }
  return file;
};
`;

function run(args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd: opts.cwd, env: opts.env, timeout: opts.timeoutMs ?? 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('production build', () => {
  let app: string;
  let dist: string;
  let guard: string;
  /** The environment of plain node: none of the loader settings this test process may have. */
  let env: NodeJS.ProcessEnv;

  before(async () => {
    app = mkdtempSync(path.join(os.tmpdir(), 'interaction-data-build-'));
    dist = path.join(app, 'dist');
    // The image's layout: /app/node_modules, /app/dist, /app/bin.
    symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(app, 'node_modules'), 'dir');
    mkdirSync(path.join(app, 'bin'));
    copyFileSync(path.join(REPO_ROOT, 'bin', 'interaction-data'), path.join(app, 'bin', 'interaction-data'));
    guard = path.join(app, 'no-typescript.cjs');
    writeFileSync(guard, NO_TYPESCRIPT);
    env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS' && !k.startsWith('TSX')));

    const build = await run(['--import', 'tsx', path.join(REPO_ROOT, 'scripts', 'build.ts'), '--out-dir', dist], {
      cwd: REPO_ROOT,
      timeoutMs: 300_000,
    });
    assert.equal(build.code, 0, `npm run build failed:\n${build.stdout}${build.stderr}`);
  });

  after(() => {
    if (app) rmSync(app, { recursive: true, force: true });
  });

  it('compiles the production code and the workflow bundle, and nothing else', () => {
    for (const entry of ['src/worker.js', 'src/api/server.js', 'src/cli/main.js', 'src/db/migrateCli.js', 'package.json']) {
      assert.ok(existsSync(path.join(dist, entry)), `dist/${entry} is missing`);
    }
    const bundle = path.join(dist, 'workflow-bundle.js');
    assert.ok(statSync(bundle).size > 0, 'the workflow bundle is empty');
    assert.match(readFileSync(bundle, 'utf8'), /interactionDataLifecycle/);
    for (const devOnly of ['test', 'scripts', 'bench', 'src/devStack.js']) {
      assert.ok(!existsSync(path.join(dist, devOnly)), `dist/${devOnly} is not production code`);
    }
  });

  it('runs the CLI with plain node', async () => {
    const help = await run(['--require', guard, path.join(dist, 'src/cli/main.js'), '--help'], { cwd: app, env });
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /Usage: interaction-data/);
    assert.match(help.stdout, /restore/);
    // The version comes from package.json, a JSON import that has to be found from dist/ too.
    const v = await run(['--require', guard, path.join(dist, 'src/cli/main.js'), '--version'], { cwd: app, env });
    assert.equal(v.stdout.trim(), version, v.stderr);
  });

  it('bin/interaction-data runs the build where there are no sources', async () => {
    const help = await run(['--require', guard, path.join(app, 'bin', 'interaction-data'), '--help'], { cwd: app, env });
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /Usage: interaction-data/);
  });

  it('loads the worker and the API with plain node', async () => {
    const script = `
      const { startWorker } = require(${JSON.stringify(path.join(dist, 'src/worker.js'))});
      const { startApi } = require(${JSON.stringify(path.join(dist, 'src/api/server.js'))});
      if (typeof startWorker !== 'function' || typeof startApi !== 'function') throw new Error('entry points not exported');
    `;
    const load = await run(['--require', guard, '-e', script], { cwd: app, env });
    assert.equal(load.code, 0, load.stderr);
  });

  it('runs the migrate entry point with plain node', async () => {
    // Up to its first use of the URL: every module it needs has loaded by then.
    const migrate = await run(['--require', guard, path.join(dist, 'src/db/migrateCli.js')], {
      cwd: app,
      env: { ...env, MYSQL_URL: 'not a url' },
    });
    assert.equal(migrate.code, 1);
    assert.match(migrate.stderr, /MYSQL_URL is not a URL/);
  });
});
