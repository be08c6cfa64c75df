/**
 * The test suite, in the order that fails fastest:
 *
 *   1. checks: Prettier, ESLint (typescript-eslint's type-checked rules), the TypeScript compiler;
 *   2. unit tests: pure logic, no server (test/unit);
 *   3. integration tests against a real Temporal dev server (built from source on first use) and real
 *      MySQL. Each file has a namespace and a database of its own, so several files run at once; the
 *      workflow code is bundled once and every worker of every file loads that bundle. The S3 gateway
 *      (Versity Gateway, built from source on first use too) is handed to the files as VERSITYGW_PATH;
 *      each starts gateways of its own with it. Test stacks archive to S3; the files that archive
 *      through a worker run a second time with the MySQL store (BOTH_STORES below).
 *
 *   npm test                             all three (the fault suite in its short variant; its full one when CI is set)
 *   npm run test:unit                    step 2 alone
 *   npm run test:integration             step 3 alone
 *   npm test -- test/crash.test.ts       only the files named (step 3's servers, no checks)
 *   npm run test:faults                  the fault suite's full variant (FAULTS_MODE=full), see test/faults/
 *
 * TEST_CONCURRENCY sets how many integration files run at once. Named files run with the S3 store only,
 * unless TEST_BOTH_STORES=1; TEST_ARCHIVE_STORE=mysql runs them with MySQL's.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_MYSQL_URL } from '../src/config';
import { ensureLocalMysql } from '../src/db/localMysql';
import { createLogger } from '../src/logger';
import { freePort, startDevServer } from '../src/temporal/devServer';
import { writeWorkflowBundle } from '../src/temporal/workflowBundle';
import { ensureTemporalBinary } from './ensureTemporal';
import { ensureVersityBinary } from './ensureVersity';
import { runTestFiles, type TestRun } from './testPool';

const root = path.resolve(__dirname, '..');
const log = createLogger('test');

/**
 * Files that spend minutes mostly waiting (for timers, restarts, retries): started first, so that the
 * rest of the suite runs beside them instead of after them.
 */
const LONGEST_FIRST = [
  'test/faults/temporalRestart.test.ts',
  'test/faults/sigkill.test.ts',
  'test/faults/mysql.test.ts',
  'test/faults/signalStorm.test.ts',
  'test/faults/s3.test.ts',
  'test/faults/erasure.test.ts',
  'test/property/api.property.test.ts',
  'test/property/cli.property.test.ts',
];

function testFiles(dir: string): string[] {
  return readdirSync(dir)
    .flatMap((name) => {
      const full = path.join(dir, name);
      if (statSync(full).isDirectory()) return ['support', 'histories', 'unit'].includes(name) ? [] : testFiles(full);
      return name.endsWith('.test.ts') ? [full] : [];
    })
    .sort();
}

/**
 * Files run a second time with the MySQL archive store (their stacks archive to S3 otherwise): those
 * whose actors archive and restore through a worker, the fault suite's among them in its short
 * variant, so that both stores pass the lifecycle, crash, retention and fault tests. Files that call
 * a store directly (s3Store, archiver, fencing, hotTables, exactIds, userMessages) cover each store on
 * their own; the bulk restores drive the same actors' restores whichever store holds the chunks; the
 * rest never archive.
 */
const BOTH_STORES = [
  'test/faults/sigkill.test.ts',
  'test/faults/mysql.test.ts',
  'test/faults/signalStorm.test.ts',
  'test/faults/erasure.test.ts',
  'test/lifecycle.test.ts',
  'test/crash.test.ts',
  'test/retention.test.ts',
  'test/serverRestart.test.ts',
  'test/actorAnswers.test.ts',
  'test/email.test.ts',
  'test/userAccess.test.ts',
  'test/userErasure.test.ts',
];

/** Every file with the default store, and those of BOTH_STORES again with MySQL's; the longest first. */
function testRuns(files: string[], withMysqlPass: boolean): TestRun[] {
  const rank = (f: string) => {
    const i = LONGEST_FIRST.indexOf(path.relative(root, f));
    return i < 0 ? LONGEST_FIRST.length : i;
  };
  const runs: TestRun[] = files.map((file) => ({ file, label: path.relative(root, file) }));
  if (withMysqlPass) {
    for (const file of files.filter((f) => BOTH_STORES.includes(path.relative(root, f)))) {
      runs.push({
        file,
        label: `${path.relative(root, file)} [MySQL store]`,
        env: { TEST_ARCHIVE_STORE: 'mysql', FAULTS_MODE: 'short' },
      });
    }
  }
  return runs.sort((a, b) => rank(a.file) - rank(b.file) || a.label.localeCompare(b.label));
}

function run(label: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  log.info(label);
  const started = Date.now();
  const child = spawn(process.execPath, args, { cwd: root, stdio: 'inherit', env });
  return new Promise<number>((resolve) =>
    child.on('exit', (code, signal) => {
      log.info({ seconds: Math.round((Date.now() - started) / 100) / 10, code: code ?? signal }, `${label}: done`);
      resolve(code ?? 1);
    }),
  );
}

function reporterArgs(): string[] {
  return process.env.CI ? ['--test-reporter=spec'] : [];
}

async function checks(): Promise<number> {
  const steps: [string, string[]][] = [
    ['format (prettier --check)', [require.resolve('prettier/bin/prettier.cjs'), '--check', '--log-level=warn', '.']],
    [
      'lint (eslint)',
      [
        // No cache: a cached file is not checked again when only the types it imports change.
        path.join(path.dirname(require.resolve('eslint/package.json')), 'bin', 'eslint.js'),
        '.',
      ],
    ],
    ['type check (tsc --noEmit)', [require.resolve('typescript/bin/tsc'), '--noEmit', '-p', 'tsconfig.json']],
  ];
  for (const [label, args] of steps) {
    const code = await run(label, args);
    if (code !== 0) return code;
  }
  return 0;
}

function unitTests(): Promise<number> {
  const files = readdirSync(path.join(root, 'test', 'unit'))
    .filter((f) => f.endsWith('.test.ts'))
    .map((f) => path.join('test', 'unit', f));
  return run('unit tests', ['--import', 'tsx', '--test', ...reporterArgs(), ...files]);
}

async function integrationTests(
  files: string[],
  temporalBinary: Promise<string>,
  versityBinary: Promise<string>,
  withMysqlPass: boolean,
): Promise<number> {
  const mysqlUrl = process.env.TEST_MYSQL_URL || process.env.MYSQL_URL || DEFAULT_MYSQL_URL;
  const privateMysql = await ensureLocalMysql(mysqlUrl, log);
  const binary = await temporalBinary;
  const versitygw = await versityBinary;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'interaction-data-test-'));
  try {
    const workflowBundle = path.join(dir, 'workflow-bundle.js');
    const [server] = await Promise.all([
      startDevServer({
        binary,
        port: await freePort(),
        uiPort: null,
        dbFile: path.join(dir, 'temporal.db'),
        logLevel: 'error',
        // Suggest continue-as-new after a few dozen events, so every test also crosses continue-as-new.
        dynamicConfig: { 'limit.historyCount.suggestContinueAsNew': 60 },
      }),
      writeWorkflowBundle(require.resolve('../workflows'), workflowBundle),
    ]);
    // CI has the time for the fault suite's full variant, so it runs that; a developer's `npm test` runs
    // the short one unless told otherwise.
    const faultsMode = process.env.FAULTS_MODE || (process.env.CI ? 'full' : 'short');
    const concurrency = Number(process.env.TEST_CONCURRENCY) || 4;
    log.info({ temporal: server.address, mysql: mysqlUrl, files: files.length, concurrency, faultsMode }, 'integration tests');
    try {
      return await runTestFiles(testRuns(files, withMysqlPass), {
        concurrency,
        cwd: root,
        env: {
          FAULTS_MODE: faultsMode,
          ...process.env,
          TEST_TEMPORAL_ADDRESS: server.address,
          TEST_MYSQL_URL: mysqlUrl,
          WORKFLOW_BUNDLE_PATH: workflowBundle,
          // Each file starts S3 gateways of its own with it (src/s3/embeddedGateway.ts).
          VERSITYGW_PATH: versitygw,
        },
      });
    } finally {
      await server.stop();
    }
  } finally {
    await privateMysql?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<number> {
  const started = Date.now();
  const named = process.argv.slice(2).filter((a) => a.endsWith('.ts'));
  const integrationOnly = process.argv.includes('--integration');
  let code: number;
  // The Temporal CLI and the S3 gateway are built (first run only) while the checks and unit tests run.
  const temporalBinary = ensureTemporalBinary();
  temporalBinary.catch(() => undefined);
  const versityBinary = ensureVersityBinary();
  versityBinary.catch(() => undefined);
  if (named.length)
    code = await integrationTests(
      named.map((f) => path.resolve(f)),
      temporalBinary,
      versityBinary,
      process.env.TEST_BOTH_STORES === '1',
    );
  else {
    code = integrationOnly ? 0 : (await checks()) || (await unitTests());
    if (code === 0) code = await integrationTests(testFiles(path.join(root, 'test')), temporalBinary, versityBinary, true);
  }
  log.info({ seconds: Math.round((Date.now() - started) / 1000), code }, 'test run finished');
  return code;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
