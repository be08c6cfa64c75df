import type { Command } from 'commander';
import { parseInstantOption, parseRefs, refLabel } from '../args';
import { failOnErrors, forEachRef } from '../batch';
import type { CliContext } from '../context';

interface StopOptions {
  stoppedAt?: string;
}

export function registerStop(program: Command, ctx: CliContext): void {
  program
    .command('stop')
    .description('record that messages stopped sending: starts the clock to their expiry')
    .argument('<kind:id...>', 'messages, e.g. campaign:6f1c2b canvas:welcome-flow')
    .option('--stopped-at <iso>', 'when they stopped, ISO-8601 with a time zone (default: now)')
    .action(async (texts: string[], options: StopOptions) => {
      const refs = parseRefs(texts);
      const stoppedAt = options.stoppedAt === undefined ? undefined : parseInstantOption('--stopped-at', options.stoppedAt);

      const outcomes = await forEachRef(ctx, refs, 'stopping', (lifecycle, ref) =>
        lifecycle.stop(ref.kind, ref.id, stoppedAt === undefined ? {} : { stoppedAt }),
      );
      for (const o of outcomes) {
        if (!o.ok) continue;
        const a = o.value;
        ctx.out(
          a.changed
            ? `${refLabel(o.ref)}  stopped at ${a.stoppedAt}; its data expires at ${a.expiresAt}`
            : `${refLabel(o.ref)}  unchanged (state: ${a.state}${a.expiresAt ? `, expires at ${a.expiresAt}` : ''})`,
        );
      }
      failOnErrors(ctx, outcomes, 'stop');
    });
}
