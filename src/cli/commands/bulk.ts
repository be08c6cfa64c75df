/**
 * `interaction-data bulk status <request>`: re-attaches to a bulk restore (started by `restore --tag` or
 * `restore <kind>:<id>…`, possibly with --detach, from any machine) and follows it to the end, or prints
 * where it stands with --once. Also the follower `restore` uses: a live progress bar fed by the workflow's
 * `progress` query, and the summary at the end.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '@temporalio/client';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { classifyFailure } from '../../api/errors';
import { BulkRestoreClient, type BulkRestoreView } from '../../client/bulkRestoreClient';
import { parseBulkRequestId } from '../../bulk/request';
import { describeSelection, refText, type BulkRestoreProgress } from '../../bulk/types';
import { InvalidInputError } from '../../shared/validation';
import { parsePositiveIntOption } from '../args';
import { describeFailure } from '../batch';
import { CommandFailedError, UsageError, type CliContext } from '../context';
import { instant, json } from '../format';

interface BulkStatusOptions {
  json?: boolean;
  once?: boolean;
  timeout?: string;
}

export interface FollowOptions {
  json: boolean;
  /** Stop following (the restore goes on) after this long; null: as long as it takes. */
  timeoutMs: number | null;
  pollMs?: number;
}

const n = (value: number) => value.toLocaleString('en-US');

/** A bulk client on the connection the command opened (same address and namespace options). */
export async function bulkClient(ctx: CliContext): Promise<BulkRestoreClient> {
  const connection = await ctx.connection();
  return new BulkRestoreClient(new Client({ connection, namespace: ctx.config().temporalNamespace }));
}

export function parseRequestArgument(text: string): string {
  try {
    return parseBulkRequestId(text);
  } catch (err) {
    if (err instanceof InvalidInputError) throw new UsageError(`<request>: ${err.message}`);
    throw err;
  }
}

function counts(p: BulkRestoreProgress): string {
  return `${n(p.restored)} restored, ${n(p.alreadyAvailable)} already available, ${n(p.failed)} failed; ${n(p.rowsRestored)} rows`;
}

/** Bar on a terminal, a line every few seconds (when something changed) otherwise; always on stderr. */
function progressView(ctx: CliContext) {
  const stderr = ctx.io.stderr;
  let bar: cliProgress.SingleBar | null = null;
  let lastLine = '';
  let lastLineAt = 0;
  return {
    update(p: BulkRestoreProgress): void {
      if (p.phase === 'registering') return;
      if (stderr.isTTY && p.total > 0) {
        const payload = { restored: n(p.restored), available: n(p.alreadyAvailable), failed: n(p.failed), rows: n(p.rowsRestored) };
        if (!bar) {
          bar = new cliProgress.SingleBar(
            {
              stream: stderr as NodeJS.WritableStream,
              // Counts first: a line wider than the terminal is cut on the right, not wrapped.
              format:
                'restoring {value}/{total} | {restored} restored, {available} already available, {failed} failed | {rows} rows | {duration_formatted} [{bar}]',
              barsize: 25,
              hideCursor: true,
              clearOnComplete: false,
              fps: 5,
            },
            cliProgress.Presets.shades_classic,
          );
          bar.start(p.total, p.done, payload);
        } else {
          bar.update(p.done, payload);
        }
        return;
      }
      const line = `restoring: ${n(p.done)}/${n(p.total)} messages (${counts(p)})`;
      if (line !== lastLine && (Date.now() - lastLineAt >= 2_000 || p.done === p.total)) {
        ctx.err(line);
        lastLine = line;
        lastLineAt = Date.now();
      }
    },
    log(line: string): void {
      if (bar) stderr.write(`\r\x1b[2K${line}\n`);
      else ctx.err(line);
    },
    stop(): void {
      bar?.stop();
      bar = null;
    },
  };
}

/** The summary at the end, on stdout; fails the command when any message failed. */
export function printOutcome(ctx: CliContext, p: BulkRestoreProgress, asJson: boolean): void {
  if (asJson) {
    ctx.out(json(p));
  } else {
    ctx.out(`bulk restore ${p.requestId}: ${describeSelection(p.selection)}, requested by ${p.requestedBy}`);
    ctx.out(`  messages            ${n(p.total)}`);
    ctx.out(`  restored            ${n(p.restored)} (${n(p.rowsRestored)} interaction records)`);
    ctx.out(`  already available   ${n(p.alreadyAvailable)} (left untouched)`);
    ctx.out(`  failed              ${n(p.failed)}`);
    if (p.failures.length > 0) {
      ctx.out('failed:');
      for (const f of p.failures) ctx.out(`  ${refText(f)}  ${f.reason}`);
      if (p.failed > p.failures.length) ctx.out(`  ... and ${n(p.failed - p.failures.length)} more (all listed in the summary e-mail)`);
    }
    if (p.summarySentAt) ctx.out(`summary e-mailed to ${p.requestedBy} at ${instant(p.summarySentAt)}`);
  }
  if (p.failed > 0) throw new CommandFailedError(`${n(p.failed)} of ${n(p.total)} messages could not be restored`);
}

/**
 * Follows a request to its end. The bar is fed by the progress query; the workflow's result (waited for
 * alongside, across continue-as-new) decides when it is over, so a request that fails or is terminated
 * ends the wait as well.
 */
export async function followBulkRestore(ctx: CliContext, bulk: BulkRestoreClient, requestId: string, opts: FollowOptions): Promise<void> {
  const started = Date.now();
  const pollMs = opts.pollMs ?? 500;
  let outcome: { ok: true; value: BulkRestoreProgress } | { ok: false; error: unknown } | null = null;
  void bulk.result(requestId).then(
    (value) => (outcome = { ok: true, value }),
    (error: unknown) => (outcome = { ok: false, error }),
  );
  const view = progressView(ctx);
  let warned = false;
  try {
    while (outcome === null) {
      if (opts.timeoutMs !== null && Date.now() - started > opts.timeoutMs) {
        throw new CommandFailedError(
          `stopped following after ${Math.round(opts.timeoutMs / 1000)} s; the restore goes on. Re-attach with: interaction-data bulk status ${requestId}`,
        );
      }
      try {
        view.update(await ctx.withDeadline(() => bulk.progress(requestId)));
        warned = false;
      } catch (err) {
        const kind = classifyFailure(err);
        // No worker for a while, or a network blip: a long restore is not abandoned for that.
        if (kind !== 'temporal_timeout' && kind !== 'temporal_unavailable') throw err;
        if (!warned) view.log(`${describeFailure(err)}; still waiting`);
        warned = true;
      }
      if (outcome === null) await sleep(pollMs);
    }
    const last = outcome as { ok: true; value: BulkRestoreProgress } | { ok: false; error: unknown };
    // The result usually lands between two polls: show the bar (or line) at its final count.
    if (last.ok) view.update(last.value);
  } finally {
    view.stop();
  }
  const final = outcome as { ok: true; value: BulkRestoreProgress } | { ok: false; error: unknown };
  if (!final.ok) {
    const snapshot = await bulk.get(requestId).catch(() => null);
    throw new CommandFailedError(snapshot?.problem ?? `bulk restore ${requestId} did not complete: ${describeFailure(final.error)}`);
  }
  printOutcome(ctx, final.value, opts.json);
}

function printSnapshot(ctx: CliContext, view: BulkRestoreView, asJson: boolean): void {
  if (asJson) {
    ctx.out(json(view));
    return;
  }
  const p = view.progress;
  ctx.out(`bulk restore ${view.requestId} (${view.workflowId}): ${view.status.toLowerCase()}${p ? `, ${p.phase}` : ''}`);
  ctx.out(`  started ${instant(view.startedAt)}${view.closedAt ? `, closed ${instant(view.closedAt)}` : ''}`);
  if (p) {
    ctx.out(`  ${describeSelection(p.selection)}, requested by ${p.requestedBy}`);
    ctx.out(`  ${n(p.done)}/${n(p.total)} messages done: ${counts(p)}`);
    if (p.inFlight.length > 0) ctx.out(`  restoring now: ${p.inFlight.join(', ')}`);
    for (const f of p.failures) ctx.out(`  failed ${refText(f)}: ${f.reason}`);
  }
  if (view.problem) ctx.out(`  ${view.problem}`);
}

export function registerBulk(program: Command, ctx: CliContext): void {
  const bulk = program.command('bulk').description('bulk restores started with `restore --tag` or `restore <kind>:<id>…`');
  bulk
    .command('status')
    .description('re-attach to a bulk restore and follow it to the end (--once: print where it stands)')
    .argument('<request>', 'request id (br-…, or the id given with --request-id) or its workflow ID')
    .option('--once', 'print the current progress and exit instead of following')
    .option('--json', 'print JSON: the final progress (with --once: { requestId, workflowId, status, progress, problem })')
    .option('--timeout <seconds>', 'stop following after this many seconds (the restore goes on)')
    .action(async (text: string, options: BulkStatusOptions) => {
      const requestId = parseRequestArgument(text);
      const timeoutMs = options.timeout === undefined ? null : parsePositiveIntOption('--timeout', options.timeout) * 1000;
      if (options.once && timeoutMs !== null) throw new UsageError('--timeout only applies when following (without --once)');
      const client = await bulkClient(ctx);
      const view = await ctx.withDeadline(() => client.get(requestId));
      if (view === null)
        throw new CommandFailedError(`no bulk restore ${requestId} (it never existed, or is older than the namespace's retention)`);
      if (options.once) {
        printSnapshot(ctx, view, Boolean(options.json));
        return;
      }
      if (view.status === 'COMPLETED' && view.progress) {
        printOutcome(ctx, view.progress, Boolean(options.json));
        return;
      }
      if (view.status !== 'RUNNING')
        throw new CommandFailedError(view.problem ?? `bulk restore ${requestId} is ${view.status.toLowerCase()}`);
      ctx.err(`following bulk restore ${requestId} (Ctrl-C stops following; the restore goes on)`);
      await followBulkRestore(ctx, client, requestId, { json: Boolean(options.json), timeoutMs });
    });
}
