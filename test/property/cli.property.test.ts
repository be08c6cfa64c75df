/**
 * Property-based test of the admin CLI (runCli, as bin/interaction-data runs it) against a real
 * Temporal server and a worker: generated command lines mixing real commands, options and message
 * references with hostile arguments (bad kinds and ids, SQL fragments, control characters, options
 * without values, unknown options, repeated options).
 *
 * For every command line: runCli returns an exit code (0, 1 or 2) and never throws; a failure says
 * why on stderr; exit code 2 (bad command line) sent nothing, so no actor named on that line was
 * started, even the well-formed ones; a restore of an id no one knows (exit code 1) left no actor
 * running; and no argument reached SQL as text, in the worker running the actors the accepted
 * commands reached.
 *
 *   npm test -- test/property/cli.property.test.ts
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WorkflowNotFoundError } from '@temporalio/client';
import fc from 'fast-check';
import { runCliCaptured } from '../support/cli';
import { isMessageId, isMessageKind, lifecycleWorkflowId } from '../../src/shared/workflowId';
import type { RunningWorker } from '../../src/worker';
import { createStack, waitUntilSettled, type TestStack } from '../support/stack';
import { hostileString, PROPERTY_RUNS, PROPERTY_SEED, SqlCapture } from './support';

const idArb = fc.oneof(fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,20}$/), fc.constantFrom('CliCamp01', 'CliCanv01'));
const refArb = fc.oneof(
  { weight: 8, arbitrary: fc.tuple(fc.constantFrom('campaign', 'canvas'), idArb).map(([k, id]) => `${k}:${id}`) },
  {
    weight: 1,
    arbitrary: fc.tuple(fc.constantFrom('campaign', 'canvas', 'email', '', 'CAMPAIGN'), hostileString).map(([k, id]) => `${k}:${id}`),
  },
  { weight: 1, arbitrary: hostileString },
);
const instantArb = fc.oneof(
  fc.date({ noInvalidDate: true, min: new Date(Date.UTC(2024, 0, 1)), max: new Date() }).map((d) => d.toISOString()),
  hostileString,
);
const emailArb = fc.oneof(fc.constantFrom('ops@example.com', "o'brien+x@example.com", 'CliUser07@example.com'), hostileString);

/** An option, usually with a plausible value, sometimes with a hostile one or none at all. */
const opt = (flag: string, value: fc.Arbitrary<string>): fc.Arbitrary<string[]> =>
  fc.oneof(
    { weight: 5, arbitrary: value.map((v) => [flag, v]) },
    { weight: 1, arbitrary: hostileString.map((v) => [flag, v]) },
    { weight: 1, arbitrary: fc.constant<string[]>([flag]) },
  );

const someOf = (...options: fc.Arbitrary<string[]>[]): fc.Arbitrary<string[]> =>
  fc.subarray(options).chain((chosen) => (chosen.length ? fc.tuple(...chosen).map((parts) => parts.flat()) : fc.constant([])));

const argvArb: fc.Arbitrary<string[]> = fc
  .oneof(
    fc.tuple(fc.constant(['stop']), fc.array(refArb, { maxLength: 4 }), someOf(opt('--stopped-at', instantArb))),
    fc.tuple(fc.constant(['resume']), fc.array(refArb, { maxLength: 4 }), fc.constant([])),
    fc.tuple(
      fc.constant(['restore']),
      fc.array(refArb, { maxLength: 1 }),
      // One message at most and no --wait: nothing is followed; --detach leaves bulk restores alone.
      someOf(
        opt('--requested-by', emailArb),
        opt('--request-id', fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,30}$/)),
        opt('--dry-run', fc.constant('--json')),
      ),
    ),
    fc.tuple(
      fc.constant(['restore']),
      fc.constant([]),
      someOf(
        opt('--tag', fc.constantFrom('CliTag1', 'spring sale')),
        opt('--kind', fc.constantFrom('campaign', 'canvas', 'email')),
        opt('--requested-by', emailArb),
      ).map((o) => [...o, '--detach']),
    ),
    fc.tuple(fc.constant(['status']), fc.array(refArb, { maxLength: 3 }), someOf(opt('--json', fc.constant('--json')))),
    fc.tuple(
      fc.constant(['list']),
      fc.constant([]),
      someOf(
        opt('--state', fc.constantFrom('stopped', 'expired', 'deleted')),
        opt('--tag', fc.constantFrom('CliTag1', "x' OR '1'='1")),
        opt('--kind', fc.constantFrom('canvas', 'sms')),
        opt('--limit', fc.constantFrom('5', '0', '100000', 'ten')),
      ),
    ),
    fc.tuple(fc.constant(['bulk', 'status']), fc.array(hostileString, { maxLength: 1 }), fc.constant(['--once'])),
    fc.tuple(
      fc.constantFrom(['frobnicate'], [], ['--help'], ['stop', '--'], ['--namespace']),
      fc.array(hostileString, { maxLength: 2 }),
      fc.constant([]),
    ),
  )
  .map(([cmd, args, options]) => [...cmd, ...args, ...options]);

/** Well-formed message references on a command line: the actors that must not exist after a usage error. */
function namedWorkflows(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (const a of argv) {
    const i = a.indexOf(':');
    if (i < 0) continue;
    const kind = a.slice(0, i);
    const id = a.slice(i + 1);
    if (isMessageKind(kind) && isMessageId(id)) out.push(lifecycleWorkflowId({ kind, id }));
  }
  return out;
}

describe('admin CLI under generated and hostile command lines', () => {
  let stack: TestStack;
  let worker: RunningWorker;
  let sql: SqlCapture;

  before(async () => {
    stack = await createStack({ ttl: '1 hour', cleanupInterval: '1 hour' });
    worker = await stack.startWorker();
    sql = new SqlCapture([worker.db]);
  });
  after(async () => stack?.close());

  async function exists(workflowId: string): Promise<boolean> {
    try {
      await stack.client.workflow.getHandle(workflowId).describe();
      return true;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return false;
      throw err;
    }
  }

  async function running(workflowId: string): Promise<boolean> {
    try {
      return (await stack.client.workflow.getHandle(workflowId).describe()).status.name === 'RUNNING';
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return false;
      throw err;
    }
  }

  it(
    `every command line ends with an exit code, sends nothing when refused, never puts input into SQL text (${Math.ceil(PROPERTY_RUNS / 2)} runs)`,
    { timeout: 45 * 60_000 },
    async (t) => {
      const env = { ...process.env, TEMPORAL_ADDRESS: stack.env.TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE: stack.env.TEMPORAL_NAMESPACE };
      const codes = new Map<number, number>();
      const allArgs: string[] = [];
      const reached = new Set<string>();
      await fc.assert(
        fc.asyncProperty(argvArb, async (argv) => {
          const named = namedWorkflows(argv);
          const existed = new Map<string, boolean>();
          for (const w of named) existed.set(w, await exists(w));
          const { code, stdout, stderr } = await runCliCaptured(argv, env);
          codes.set(code, (codes.get(code) ?? 0) + 1);
          if (code !== 2) for (const w of named) reached.add(w);
          allArgs.push(...argv);
          const what = `interaction-data ${JSON.stringify(argv)} → ${code}\nstdout: ${stdout.slice(0, 300)}\nstderr: ${stderr.slice(0, 300)}`;
          assert.ok([0, 1, 2].includes(code), `exit code: ${what}`);
          if (code !== 0) assert.ok(stderr.trim().length > 0, `a failure says why: ${what}`);
          if (code === 2) {
            for (const w of named)
              if (!existed.get(w)) assert.equal(await exists(w), false, `a refused command line started ${w}: ${what}`);
          }
          if (code === 1 && argv[0] === 'restore' && /never defined, stopped or sent events for/.test(stderr)) {
            // A restore of an id no one knows is refused by its actor, which then ends: none is left running.
            for (const w of named)
              if (!existed.get(w)) assert.equal(await running(w), false, `a refused restore left ${w} running: ${what}`);
          }
        }),
        {
          numRuns: Math.ceil(PROPERTY_RUNS / 2),
          ...(PROPERTY_SEED === undefined ? {} : { seed: PROPERTY_SEED }),
          endOnFailure: true,
          includeErrorInReport: true,
        },
      );
      // Once the actors the commands reached have nothing in flight, all their SQL has been sent: check it.
      for (const w of reached) if (await exists(w)) await waitUntilSettled(stack, w);
      const { leaked, bound } = sql.check(0, allArgs);
      assert.deepEqual(leaked, [], 'an argument reached SQL as text');
      const summary = [...codes.entries()]
        .sort((a, b) => a[0] - b[0])
        .map(([c, n]) => `exit ${c}×${n}`)
        .join(' ');
      t.diagnostic(`${summary}; arguments seen in SQL, always as bound parameters: ${bound}`);
      process.stderr.write(`[property] CLI ${summary}; arguments bound into SQL: ${bound}\n`);
    },
  );
});
