import type { Command } from 'commander';
import { RESUME_REFUSED_MESSAGE, type LifecycleState } from '../../shared/types';
import { lifecycleWorkflowId } from '../../shared/workflowId';
import { parseRefs, refLabel } from '../args';
import { failOnErrors, forEachRef } from '../batch';
import { CommandFailedError, type CliContext } from '../context';

/** Same rule as LifecycleClient.resume; checked here for the whole list before anything is sent. */
const RESUMABLE: readonly LifecycleState[] = ['active', 'stopped', 'retained'];

export function registerResume(program: Command, ctx: CliContext): void {
  program
    .command('resume')
    .description('record that stopped messages are active again (refused once their data has expired)')
    .argument('<kind:id...>', 'messages, e.g. campaign:6f1c2b canvas:welcome-flow')
    .action(async (texts: string[]) => {
      const refs = parseRefs(texts);

      // Resuming several messages is all or nothing, as in the dashboard: one expired message
      // refuses the whole request rather than leaving the list half resumed.
      const checks = await forEachRef(ctx, refs, 'checking', (lifecycle, ref) => lifecycle.status(ref.kind, ref.id));
      failOnErrors(ctx, checks, 'checking before resume');
      const refused = checks.flatMap((c) => (c.ok && c.value && !RESUMABLE.includes(c.value.state) ? [{ ref: c.ref, state: c.value.state }] : []));
      if (refused.length > 0) {
        for (const r of refused) ctx.err(`${refLabel(r.ref)}  ${RESUME_REFUSED_MESSAGE[r.ref.kind]} (state: ${r.state})`);
        throw new CommandFailedError(refs.length === 1 ? 'nothing was resumed' : `nothing was resumed: ${refused.length} of ${refs.length} messages cannot be resumed`);
      }

      const outcomes = await forEachRef(ctx, refs, 'resuming', (lifecycle, ref) => lifecycle.resume(ref.kind, ref.id));
      for (const o of outcomes) if (o.ok) ctx.out(`${refLabel(o.ref)}  resume sent to ${lifecycleWorkflowId(o.ref)}`);
      failOnErrors(ctx, outcomes, 'resume');
    });
}
