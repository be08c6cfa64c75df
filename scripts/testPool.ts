/**
 * Runs test files a few at a time, each in a Node test-runner process of its own, in the order given:
 * `node --test` with several files sorts them by name, which would start the longest files last. A
 * file's report is printed whole when it ends, so reports of files running side by side do not
 * interleave; what a file writes to stderr (fault seeds, worker warnings) shows at once.
 */
import { spawn } from 'node:child_process';

/** One test file to run, under a label of its own, with extra environment (another archive store, say). */
export interface TestRun {
  file: string;
  label: string;
  env?: Record<string, string>;
}

interface FileOutcome {
  file: string;
  passed: boolean;
  seconds: number;
  counts: Record<'tests' | 'pass' | 'fail', number>;
}

function runFile(run: TestRun, cwd: string, env: NodeJS.ProcessEnv): Promise<FileOutcome> {
  const started = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', run.file], {
    cwd,
    env: { ...env, ...run.env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const chunks: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
  return new Promise((resolve) =>
    child.on('close', (code) => {
      const report = Buffer.concat(chunks).toString('utf8');
      const count = (name: string) => Number(new RegExp(`^ℹ ${name} (\\d+)$`, 'm').exec(report)?.[1] ?? 0);
      const outcome: FileOutcome = {
        file: run.label,
        passed: code === 0,
        seconds: Math.round((Date.now() - started) / 100) / 10,
        counts: { tests: count('tests'), pass: count('pass'), fail: count('fail') },
      };
      process.stdout.write(`\n── ${outcome.file}: ${outcome.passed ? 'passed' : 'FAILED'} in ${outcome.seconds} s\n${report}`);
      resolve(outcome);
    }),
  );
}

/** Runs every file, `concurrency` at a time, and answers 0 when all passed. */
export async function runTestFiles(
  runs: readonly TestRun[],
  opts: { concurrency: number; cwd: string; env: NodeJS.ProcessEnv },
): Promise<number> {
  const queue = [...runs];
  const outcomes: FileOutcome[] = [];
  const lane = async () => {
    for (let run = queue.shift(); run !== undefined; run = queue.shift()) outcomes.push(await runFile(run, opts.cwd, opts.env));
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency) }, lane));

  const total = (key: keyof FileOutcome['counts']) => outcomes.reduce((n, o) => n + o.counts[key], 0);
  const failed = outcomes.filter((o) => !o.passed);
  const lines = [...outcomes]
    .sort((a, b) => b.seconds - a.seconds)
    .map((o) => `  ${o.passed ? '✔' : '✖'} ${o.file} ${o.seconds} s (${o.counts.pass}/${o.counts.tests})`);
  process.stdout.write(
    `\n── ${outcomes.length} files, ${total('tests')} tests: ${total('pass')} passed, ${total('fail')} failed` +
      `${failed.length ? `; failed files: ${failed.map((o) => o.file).join(', ')}` : ''}\n${lines.join('\n')}\n`,
  );
  return failed.length ? 1 : 0;
}
