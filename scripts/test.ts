/**
 * The test suite, in the order that fails fastest:
 *
 *   1. checks: Prettier, ESLint (typescript-eslint's type-checked rules), the TypeScript compiler;
 *   2. unit tests: pure logic, no server (test/unit);
 *   3. integration tests against a real Temporal dev server (built from source on first use) and real
 *      MySQL. Each file has a namespace and a database of its own, so several files run at once; the
 *      workflow code is bundled once and every worker of every file loads that bundle. The S3 gateway
 *      (Versity Gateway, built from source on first use too) is handed to the files as VERSITYGW_PATH;
 *      each starts gateways of its own with it.
 *
 *   npm test                             all three (the fault suite in its short variant; its full one when CI is set)
 *   npm run test:unit                    step 2 alone
 *   npm run test:integration             step 3 alone
 *   npm test -- test/crash.test.ts       only the files named (step 3's servers, no checks)
 *   npm run test:faults                  the fault suite's full variant (FAULTS_MODE=full), see test/faults/
 *
 * TEST_CONCURRENCY sets how many integration files run at once.
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
import { runTestFiles } from './testPool';

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

function longestFirst(files: string[]): string[] {
  const rank = (f: string) => {
    const i = LONGEST_FIRST.indexOf(path.relative(root, f));
    return i < 0 ? LONGEST_FIRST.length : i;
  };
  return [...files].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
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

async function integrationTests(files: string[], temporalBinary: Promise<string>, versityBinary: Promise<string>): Promise<number> {
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
      return await runTestFiles(longestFirst(files), {
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
    );
  else {
    code = integrationOnly ? 0 : (await checks()) || (await unitTests());
    if (code === 0) code = await integrationTests(testFiles(path.join(root, 'test')), temporalBinary, versityBinary);
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
