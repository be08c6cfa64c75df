import type { Command } from 'commander';
import type { ActorSummary, ListFilter } from '../../client/lifecycleClient';
import { parseKindOption, parsePositiveIntOption, parseStateOption, parseTagOption } from '../args';
import type { CliContext } from '../context';
import { instant, json, table } from '../format';

interface ListOptions {
  state?: string;
  tag?: string;
  kind?: string;
  limit?: string;
  json?: boolean;
}

/** A listing pages through Temporal visibility; allow it far longer than a single call. */
const LIST_TIMEOUT_MS = 5 * 60_000;

export function registerList(program: Command, ctx: CliContext): void {
  program
    .command('list')
    .description('list messages by lifecycle state, tag and kind (Temporal visibility: may lag a few seconds)')
    .option('--state <state>', 'active, stopped, retained, archiving, expired or restoring')
    .option('--tag <tag>', 'only messages with this tag')
    .option('--kind <kind>', 'campaign or canvas')
    .option('--limit <n>', 'at most this many messages')
    .option('--json', 'print JSON: [{ kind, id, workflowId, state, tags, expiresAt }]')
    .action(async (options: ListOptions) => {
      const filter: ListFilter = {};
      if (options.state !== undefined) filter.state = parseStateOption('--state', options.state);
      if (options.tag !== undefined) filter.tag = parseTagOption('--tag', options.tag);
      if (options.kind !== undefined) filter.kind = parseKindOption('--kind', options.kind);
      const limit = options.limit === undefined ? Infinity : parsePositiveIntOption('--limit', options.limit);

      const lifecycle = await ctx.lifecycle();
      const items = await ctx.withDeadline(async () => {
        const found: ActorSummary[] = [];
        for await (const item of lifecycle.list(filter)) {
          found.push(item);
          if (found.length >= limit) break;
        }
        return found;
      }, LIST_TIMEOUT_MS);

      if (options.json) {
        ctx.out(json(items));
        return;
      }
      if (items.length === 0) {
        ctx.err('no messages match');
        return;
      }
      const rows = items.map((a) => [`${a.kind}:${a.id}`, a.state ?? '-', instant(a.expiresAt), a.tags.join(', ')]);
      for (const line of table(['MESSAGE', 'STATE', 'EXPIRES AT', 'TAGS'], rows)) ctx.out(line);
      ctx.err(`${items.length} message${items.length === 1 ? '' : 's'}${items.length === limit ? ` (limit ${limit} reached)` : ''}`);
    });
}
