import type { Command } from 'commander';
import { ResumeRefusedError } from '../../client/lifecycleClient';
import { RESUME_REFUSED_MESSAGE, type LifecycleState } from '../../shared/types';
import { parseRefs, refLabel } from '../args';
import { failOnErrors, forEachRef } from '../batch';
import { CommandFailedError, type CliContext } from '../context';

const RESUMABLE: readonly LifecycleState[] = ['active', 'stopped', 'retained'];

export function registerResume(program: Command, ctx: CliContext): void {
  program
    .command('resume')
    .description(
      'record that stopped messages are active again (refused once their data has expired, or while their audiences filter on expired data)',
    )
    .argument('<kind:id...>', 'messages, e.g. campaign:6f1c2b canvas:welcome-flow')
    .action(async (texts: string[]) => {
      const refs = parseRefs(texts);

      if (refs.length > 1) {
        // Several at once are all or nothing, as in the dashboard: a list with an expired message is
        // refused before any is resumed. Each actor still decides its own resume below.
        const checks = await forEachRef(ctx, refs, 'checking', (lifecycle, ref) => lifecycle.status(ref.kind, ref.id));
        failOnErrors(ctx, checks, 'checking before resume');
        const refused = checks.flatMap((c) =>
          c.ok && c.value && !RESUMABLE.includes(c.value.state) ? [{ ref: c.ref, state: c.value.state }] : [],
        );
        if (refused.length > 0) {
          for (const r of refused) ctx.err(`${refLabel(r.ref)}  ${RESUME_REFUSED_MESSAGE[r.ref.kind]} (state: ${r.state})`);
          throw new CommandFailedError(`nothing was resumed: ${refused.length} of ${refs.length} messages cannot be resumed`);
        }
      }

      // The actor's own answer: its rule-9 checks (its data, its audiences' filters and segments) are
      // decided in order with its deadline, so an accepted resume is never followed by an expiry.
      const outcomes = await forEachRef(ctx, refs, 'resuming', (lifecycle, ref) => lifecycle.resume(ref.kind, ref.id));
      for (const o of outcomes) {
        if (o.ok) ctx.out(`${refLabel(o.ref)}  ${o.value.changed ? 'resumed' : 'already active'} (state: ${o.value.state})`);
      }
      const refusals = outcomes.filter((o) => !o.ok && o.error instanceof ResumeRefusedError);
      for (const r of refusals) if (!r.ok) ctx.err(`${refLabel(r.ref)}  ${(r.error as Error).message}`);
      const others = outcomes.filter((o) => o.ok || !(o.error instanceof ResumeRefusedError));
      failOnErrors(ctx, others, 'resume');
      if (refusals.length > 0) {
        throw new CommandFailedError(
          refs.length === 1 ? 'the actor refused the resume' : `the actors refused ${refusals.length} of ${refs.length} resumes`,
        );
      }
    });
}
