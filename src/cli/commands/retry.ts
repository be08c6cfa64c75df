import type { Command } from 'commander';
import { parseRefs, refLabel } from '../args';
import { failOnErrors, forEachRef } from '../batch';
import type { CliContext } from '../context';

export function registerRetry(program: Command, ctx: CliContext): void {
  program
    .command('retry')
    .description("after fixing the cause of an actor's problem (see `status`): run the step that failed again")
    .argument('<kind:id...>', 'messages, e.g. campaign:6f1c2b')
    .action(async (texts: string[]) => {
      const refs = parseRefs(texts);
      const outcomes = await forEachRef(ctx, refs, 'retrying', (lifecycle, ref) => lifecycle.retry(ref.kind, ref.id));
      for (const o of outcomes) if (o.ok) ctx.out(`${refLabel(o.ref)}  retrying ${o.value.retried}`);
      failOnErrors(ctx, outcomes, 'retry');
    });
}
