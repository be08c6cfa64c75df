/**
 * The whole test suite: type check, unit tests, then every integration test against a real Temporal dev
 * server (built from source on first use) and real MySQL. Each test file gets a namespace and a database
 * of its own on the shared server; files run one at a time, as the machine has two cores.
 *
 *   npm test                       everything (the fault suite in its short variant; its full one when CI is set)
 *   npm test -- test/crash.test.ts only the files named
 *   npm run test:faults            the fault suite's full variant (FAULTS_MODE=full), see test/faults/
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_MYSQL_URL } from '../src/config';
import { ensureLocalMysql } from '../src/db/localMysql';
import { createLogger } from '../src/logger';
import { freePort, startDevServer } from '../src/temporal/devServer';
import { writeWorkflowBundle } from '../src/temporal/workflowBundle';
import { ensureTemporalBinary } from './ensureTemporal';

const root = path.resolve(__dirname, '..');
const log = createLogger('test');

function testFiles(dir: string): string[] {
  return readdirSync(dir)
    .flatMap((name) => {
      const full = path.join(dir, name);
      if (statSync(full).isDirectory()) return name === 'support' || name === 'histories' ? [] : testFiles(full);
      return name.endsWith('.test.ts') ? [full] : [];
    })
    .sort();
}

async function main(): Promise<number> {
  const only = process.argv.slice(2).filter((a) => a.endsWith('.ts'));
  const files = only.length ? only.map((f) => path.resolve(f)) : testFiles(path.join(root, 'test'));

  if (!only.length) {
    log.info('type check (tsc --noEmit)');
    const tsc = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '--noEmit', '-p', 'tsconfig.json'], {
      cwd: root,
      stdio: 'inherit',
    });
    if (tsc.status !== 0) return tsc.status ?? 1;
  }

  const mysqlUrl = process.env.TEST_MYSQL_URL || process.env.MYSQL_URL || DEFAULT_MYSQL_URL;
  const privateMysql = await ensureLocalMysql(mysqlUrl, log);
  const binary = await ensureTemporalBinary();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'interaction-data-test-'));
  // Every worker the tests start, in-process or as a child, loads this one bundle instead of making its own.
  const workflowBundle = path.join(dir, 'workflow-bundle.js');
  await writeWorkflowBundle(require.resolve('../workflows'), workflowBundle);
  const server = await startDevServer({
    binary,
    port: await freePort(),
    uiPort: null,
    dbFile: path.join(dir, 'temporal.db'),
    logLevel: 'error',
    // Suggest continue-as-new after a few dozen events, so every test also crosses continue-as-new.
    dynamicConfig: { 'limit.historyCount.suggestContinueAsNew': 60 },
  });
  // CI has the time for the fault suite's full variant (about 20 minutes on two cores, well inside its
  // limit), so it runs that; a developer's `npm test` runs the short one unless told otherwise.
  const faultsMode = process.env.FAULTS_MODE || (process.env.CI ? 'full' : 'short');
  log.info({ temporal: server.address, mysql: mysqlUrl, files: files.length, faultsMode }, 'running tests');
  try {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--test', '--test-concurrency=1', ...(process.env.CI ? ['--test-reporter=spec'] : []), ...files],
      {
        cwd: root,
        stdio: 'inherit',
        env: {
          FAULTS_MODE: faultsMode,
          ...process.env,
          TEST_TEMPORAL_ADDRESS: server.address,
          TEST_MYSQL_URL: mysqlUrl,
          WORKFLOW_BUNDLE_PATH: workflowBundle,
        },
      },
    );
    return await new Promise<number>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0))));
  } finally {
    await server.stop();
    await privateMysql?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
