import type { Command } from 'commander';
import type { LifecycleStatus } from '../../shared/types';
import { parseRefs, refLabel } from '../args';
import { failOnErrors, forEachRef } from '../batch';
import type { CliContext } from '../context';
import { instant, json, table } from '../format';

interface StatusOptions {
  json?: boolean;
}

function note(status: LifecycleStatus): string {
  const parts: string[] = [];
  if (status.problem) {
    parts.push(
      `PROBLEM in ${status.problem.activity} since ${status.problem.since}: ${status.problem.type}: ${status.problem.error} (fix, then: interaction-data retry ${status.kind}:${status.id})`,
    );
  }
  if (status.state === 'retained')
    parts.push(`used by ${status.activeReferences} active audience${status.activeReferences === 1 ? '' : 's'}`);
  if (status.pendingRestores.length > 0)
    parts.push(`${status.pendingRestores.length} restore request${status.pendingRestores.length === 1 ? '' : 's'} pending`);
  if (status.lastRefusal) parts.push(`refused ${status.lastRefusal.signal}: ${status.lastRefusal.reason}`);
  return parts.join('; ');
}

export function registerStatus(program: Command, ctx: CliContext): void {
  program
    .command('status')
    .description('show where messages are in their lifecycle and when their data expires')
    .argument('<kind:id...>', 'messages, e.g. campaign:6f1c2b canvas:welcome-flow')
    .option('--json', 'print JSON: [{ message, found, status }]')
    .action(async (texts: string[], options: StatusOptions) => {
      const refs = parseRefs(texts);
      const outcomes = await forEachRef(ctx, refs, 'querying', (lifecycle, ref) => lifecycle.status(ref.kind, ref.id));
      failOnErrors(ctx, outcomes, 'status');
      const found = outcomes.flatMap((o) => (o.ok ? [{ ref: o.ref, status: o.value }] : []));

      if (options.json) {
        ctx.out(json(found.map(({ ref, status }) => ({ message: refLabel(ref), found: status !== null, status }))));
        return;
      }
      const rows = found.map(({ ref, status }) =>
        status === null
          ? [refLabel(ref), '-', '-', '-', '-', 'no lifecycle yet (never stopped, resumed or restored)']
          : [
              refLabel(ref),
              status.state,
              status.available ? 'yes' : 'no',
              instant(status.expiresAt),
              instant(status.stoppedAt),
              note(status),
            ],
      );
      for (const line of table(['MESSAGE', 'STATE', 'AVAILABLE', 'EXPIRES AT', 'STOPPED AT', 'NOTE'], rows)) ctx.out(line);
    });
}
