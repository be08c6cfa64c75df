/**
 * `interaction-data restore`: one message, several selected messages, or every expired campaign and/or
 * Canvas with a tag.
 *
 * - One message (and no bulk option): its actor is signalled directly, as before, and e-mails the
 *   requester itself when done; --wait follows it.
 * - Several messages, --tag, or one message with a bulk option (--dry-run, --detach, --json,
 *   --concurrency): one bulk-restore workflow, followed live with a progress bar, a summary at the end,
 *   one summary e-mail, exit code 1 when any message failed. --detach returns at once with the request id
 *   (re-attach with `interaction-data bulk status <request>`); --dry-run only lists what would be restored.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Option, type Command } from 'commander';
import type { LifecycleClient } from '../../client/lifecycleClient';
import { BulkRequestConflictError, PREVIEW_LIMIT_DEFAULT, type BulkRestoreRequest } from '../../client/bulkRestoreClient';
import { MAX_BULK_CONCURRENCY, MAX_BULK_IDS, describeSelection, refText, type BulkRestorePreview } from '../../bulk/types';
import type { MessageKind, MessageRef } from '../../shared/types';
import { InvalidInputError } from '../../shared/validation';
import {
  parseEmailOption,
  parseKindOption,
  parsePositiveIntOption,
  parseRefs,
  parseRequestIdOption,
  parseTagOption,
  refLabel,
} from '../args';
import { describeFailure, failOnErrors, forEachRef } from '../batch';
import { classifyFailure } from '../../api/errors';
import { CommandFailedError, UsageError, type CliContext } from '../context';
import { assertCallbackUrl } from '../../callbacks/callbackUrl';
import { callbackPolicy } from '../../config';
import { json, table } from '../format';
import { mapLimit, startProgress } from '../progress';
import { bulkClient, followBulkRestore } from './bulk';

interface RestoreOptions {
  requestedBy?: string;
  requestId?: string;
  tag?: string;
  kind?: string;
  detach?: boolean;
  dryRun?: boolean;
  json?: boolean;
  concurrency?: string;
  wait?: boolean;
  timeout?: string;
  pollInterval?: string;
  callbackUrl?: string;
}

/** `--callback-url`, checked against the service's callback policy (CALLBACK_ALLOWED_HOSTS, CALLBACK_SIGNING_SECRET). */
function parseCallbackOption(ctx: CliContext, text: string | undefined): { callbackUrl?: string } {
  if (text === undefined) return {};
  try {
    return { callbackUrl: assertCallbackUrl(text, callbackPolicy(ctx.io.env ?? process.env)) };
  } catch (err) {
    throw new UsageError(`--callback-url: ${(err as Error).message}`);
  }
}

export function registerRestore(program: Command, ctx: CliContext): void {
  program
    .command('restore')
    .description('bring expired interaction data back; the requester is e-mailed when it is done (one summary for several messages)')
    .argument('[kind:id...]', 'messages, e.g. campaign:6f1c2b canvas:welcome-flow')
    .option('--requested-by <email>', 'who gets the "restore complete" e-mail (required, except with --dry-run)')
    .option('--tag <tag>', 'every expired campaign and Canvas with this tag (one bulk restore)')
    .option('--kind <kind>', 'with --tag: only campaigns or only Canvases (campaign or canvas)')
    .option('--request-id <id>', 'names the request; repeating a request (same id, or same messages and requester) attaches to it')
    .option('--detach', 'bulk: start it and return with the request id; follow it later with `bulk status <request>`')
    .option('--dry-run', 'list what would be restored; nothing is sent')
    .option('--json', 'bulk: print the final progress (with --dry-run: the preview; with --detach: the request) as JSON')
    .option('--concurrency <n>', `bulk: messages restored at the same time (default 20, at most ${MAX_BULK_CONCURRENCY})`)
    .option('--callback-url <url>', 'also POST a signed notice to this URL when the restore completes or fails (bulk: when it is done)')
    .option('--wait', 'one message: wait until it is available again (a bulk restore is always followed unless --detach)')
    .option('--timeout <seconds>', 'stop waiting after this many seconds (the restore goes on)')
    .addOption(new Option('--poll-interval <ms>', 'how often to ask for status').default('1000').hideHelp())
    .action(async (texts: string[], options: RestoreOptions) => {
      const pollMs = parsePositiveIntOption('--poll-interval', options.pollInterval ?? '1000');
      const timeoutMs = options.timeout === undefined ? null : parsePositiveIntOption('--timeout', options.timeout) * 1000;
      const requestId = options.requestId === undefined ? undefined : parseRequestIdOption('--request-id', options.requestId);
      const concurrency = options.concurrency === undefined ? undefined : parsePositiveIntOption('--concurrency', options.concurrency);
      if (concurrency !== undefined && concurrency > MAX_BULK_CONCURRENCY)
        throw new UsageError(`--concurrency must be at most ${MAX_BULK_CONCURRENCY}; got ${concurrency}`);

      let tag: string | undefined;
      let kind: MessageKind | undefined;
      let refs: MessageRef[] | undefined;
      if (options.tag !== undefined) {
        if (texts.length > 0) throw new UsageError('give either --tag <tag> or <kind>:<id>…, not both');
        tag = parseTagOption('--tag', options.tag);
        if (options.kind !== undefined) kind = parseKindOption('--kind', options.kind);
      } else {
        if (options.kind !== undefined) throw new UsageError('--kind only applies with --tag');
        refs = parseRefs(texts);
        if (refs.length > MAX_BULK_IDS) throw new UsageError(`at most ${MAX_BULK_IDS} messages per restore; got ${refs.length}`);
      }

      const bulkOnly = options.dryRun || options.detach || options.json || concurrency !== undefined;
      if (refs && refs.length === 1 && !bulkOnly) {
        const requestedBy = parseEmailOption('--requested-by', options.requestedBy);
        if (!options.wait && options.timeout !== undefined) throw new UsageError('--timeout only applies with --wait');
        const callback = parseCallbackOption(ctx, options.callbackUrl);
        await restoreOne(ctx, refs[0], { requestedBy, requestId, callback, wait: Boolean(options.wait), timeoutMs, pollMs });
        return;
      }

      if (options.detach && options.dryRun) throw new UsageError('--detach and --dry-run do not go together');
      if (options.detach && options.wait) throw new UsageError('--detach and --wait do not go together');
      if (options.detach && timeoutMs !== null) throw new UsageError('--timeout only applies when following (without --detach)');
      if (options.dryRun) {
        if (options.requestedBy !== undefined) parseEmailOption('--requested-by', options.requestedBy);
        const client = await bulkClient(ctx);
        const preview = await ctx.withDeadline(
          () => client.preview(tag !== undefined ? { tag, kind } : { refs }, PREVIEW_LIMIT_DEFAULT),
          5 * 60_000,
        );
        printPreview(ctx, preview, Boolean(options.json));
        return;
      }

      const requestedBy = parseEmailOption('--requested-by', options.requestedBy);
      const request: BulkRestoreRequest = {
        requestedBy,
        ...(tag !== undefined ? { tag, ...(kind ? { kind } : {}) } : { refs }),
        ...(requestId !== undefined ? { requestId } : {}),
        ...(concurrency !== undefined ? { tuning: { concurrency } } : {}),
        ...parseCallbackOption(ctx, options.callbackUrl),
      };
      const client = await bulkClient(ctx);
      let started;
      try {
        started = await ctx.withDeadline(() => client.start(request));
      } catch (err) {
        if (err instanceof BulkRequestConflictError) throw new UsageError(`--request-id: ${err.message}`);
        if (err instanceof InvalidInputError) throw new UsageError(err.message);
        throw err;
      }
      const what = describeSelection(started.selection);
      if (options.detach) {
        if (options.json) ctx.out(json(started));
        else ctx.out(started.requestId);
        ctx.err(
          `${started.attached ? `bulk restore ${started.requestId} already exists (${started.status.toLowerCase()})` : `bulk restore ${started.requestId} started`}: ` +
            `${what}; ${requestedBy} gets one summary e-mail. Follow it with: interaction-data bulk status ${started.requestId}`,
        );
        return;
      }
      ctx.err(
        started.attached
          ? `attached to bulk restore ${started.requestId} (${started.status.toLowerCase()}): ${what}` +
              (started.status === 'COMPLETED' ? '; it has already run: name a new --request-id to run it again' : '')
          : `bulk restore ${started.requestId} started: ${what}; ${requestedBy} gets one summary e-mail (Ctrl-C stops following; the restore goes on)`,
      );
      await followBulkRestore(ctx, client, started.requestId, { json: Boolean(options.json), timeoutMs });
    });
}

function printPreview(ctx: CliContext, p: BulkRestorePreview, asJson: boolean): void {
  if (asJson) {
    ctx.out(json(p));
    return;
  }
  const action = (a: string, state: string | null) =>
    a === 'restore'
      ? 'restore'
      : a === 'unknown'
        ? 'unknown message (would fail)'
        : state === null
          ? 'already available (never stopped)'
          : 'already available';
  const rows = p.items.map((i) => [refText(i), i.name ?? '-', i.state ?? '-', action(i.action, i.state)]);
  if (rows.length > 0) for (const line of table(['MESSAGE', 'NAME', 'STATE', 'ACTION'], rows)) ctx.out(line);
  if (p.truncated) ctx.out(`... and ${p.total - p.items.length} more`);
  ctx.err(
    `dry run, ${describeSelection(p.selection)}: ${p.toRestore} to restore, ${p.alreadyAvailable} already available, ` +
      `${p.unknown} unknown, of ${p.total}; nothing was sent`,
  );
}

async function restoreOne(
  ctx: CliContext,
  ref: MessageRef,
  opts: {
    requestedBy: string;
    requestId: string | undefined;
    callback: { callbackUrl?: string };
    wait: boolean;
    timeoutMs: number | null;
    pollMs: number;
  },
): Promise<void> {
  const { requestedBy, requestId, callback } = opts;
  const outcomes = await forEachRef(ctx, [ref], 'requesting restore', (lifecycle, r) =>
    lifecycle.restore(r.kind, r.id, requestId === undefined ? { requestedBy, ...callback } : { requestedBy, requestId, ...callback }),
  );
  for (const o of outcomes) {
    if (!o.ok) continue;
    ctx.out(
      o.value.accepted
        ? `${refLabel(o.ref)}  restore requested (request id ${o.value.requestId}); ${requestedBy} will be e-mailed when it is done`
        : `${refLabel(o.ref)}  interaction data is already available; nothing to restore`,
    );
  }
  failOnErrors(ctx, outcomes, 'restore');

  if (!opts.wait) return;
  const pending = outcomes.flatMap((o) => (o.ok && o.value.accepted ? [o.ref] : []));
  await waitUntilAvailable(ctx, await ctx.lifecycle(), 1, pending, opts);
}

async function waitUntilAvailable(
  ctx: CliContext,
  lifecycle: LifecycleClient,
  total: number,
  pending: readonly MessageRef[],
  options: { timeoutMs: number | null; pollMs: number },
): Promise<void> {
  const started = Date.now();
  const waiting = new Map(pending.map((ref) => [refLabel(ref), ref]));
  const progress = startProgress(ctx, { label: 'restoring', total, unit: 'messages available', plainLines: true });
  for (let i = 0; i < total - pending.length; i++) progress.tick();
  const warned = new Set<string>();
  try {
    while (waiting.size > 0) {
      if (options.timeoutMs !== null && Date.now() - started > options.timeoutMs) {
        throw new CommandFailedError(
          `gave up waiting after ${Math.round(options.timeoutMs / 1000)} s; still restoring: ${[...waiting.keys()].join(', ')} ` +
            `(the restores go on; check with: interaction-data status ${[...waiting.keys()].join(' ')})`,
        );
      }
      await sleep(options.pollMs);
      await mapLimit([...waiting.values()], 8, async (ref) => {
        const label = refLabel(ref);
        try {
          const status = await ctx.withDeadline(() => lifecycle.status(ref.kind, ref.id));
          if (status?.problem) {
            throw new CommandFailedError(
              `${label}: the restore cannot proceed without an operator: ${status.problem.type}: ${status.problem.error} ` +
                `(since ${status.problem.since}; after fixing it: interaction-data retry ${label})`,
            );
          }
          if (status?.available) {
            waiting.delete(label);
            progress.tick(`${label} available again`);
          }
        } catch (err) {
          const kind = classifyFailure(err);
          // A worker restart or a network blip should not abandon a long restore; say so once and keep polling.
          if (kind !== 'temporal_timeout' && kind !== 'temporal_unavailable') throw err;
          if (!warned.has(label)) {
            warned.add(label);
            progress.log(`${label}: ${describeFailure(err)}; still waiting`);
          }
        }
      });
    }
  } finally {
    progress.stop();
  }
  ctx.out(`${total === 1 ? 'the message is' : `all ${total} messages are`} available again`);
}
