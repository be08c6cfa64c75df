import type { Command } from 'commander';
import { archivingPause, archivingResume, archivingStatusOf, type ArchivingStatus } from '../../client/archivingControl';
import { type CliContext } from '../context';
import { instant, json } from '../format';
import { cliPrincipal, recordCliAudit } from './tokens';

function describe(s: ArchivingStatus): string {
  const held = `${s.heldMessages.toLocaleString('en-US')} message(s) held`;
  if (s.paused) return `archiving is PAUSED by ${s.changedBy} since ${instant(s.changedAt)}${s.reason ? ` (${s.reason})` : ''}; ${held}`;
  return s.changedBy ? `archiving runs (resumed by ${s.changedBy} at ${instant(s.changedAt)}); ${held}` : `archiving runs; ${held}`;
}

export function registerArchiving(program: Command, ctx: CliContext): void {
  const archiving = program
    .command('archiving')
    .description('the brake: pause every archive and sweep during an incident, and resume them (restores carry on)');
  const audit = async (route: string, target: string) => recordCliAudit(await ctx.db(), route, target, true);

  archiving
    .command('status')
    .description('whether archiving is paused, by whom and why, and how many due messages wait for it')
    .option('--json', 'print JSON (as GET /v1/archiving)')
    .action(async (opts: { json?: boolean }) => {
      const status = await archivingStatusOf(await ctx.db());
      ctx.out(opts.json ? json(status) : describe(status));
    });

  archiving
    .command('pause')
    .description('pause archiving in every worker: due messages keep their data and say why; moves under way stop after their chunk')
    .option('--reason <text>', 'why, shown on every held actor (e.g. an incident id)')
    .option('--json', 'print JSON')
    .action(async (opts: { reason?: string; json?: boolean }) => {
      const status = await archivingPause(await ctx.db(), cliPrincipal(), opts.reason ?? null);
      await audit('archiving pause', opts.reason ?? '');
      ctx.out(opts.json ? json(status) : describe(status));
    });

  archiving
    .command('resume')
    .description('resume archiving, and wake every actor the pause held so its data moves now')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const lifecycle = await ctx.lifecycle();
      const report = await archivingResume(await ctx.db(), cliPrincipal(), (ref) =>
        ctx.withDeadline(() => lifecycle.referencesChanged(ref.kind, ref.id)),
      );
      await audit('archiving resume', `woke ${report.woken}`);
      if (opts.json) {
        ctx.out(json(report));
        return;
      }
      ctx.out(describe(report));
      ctx.out(
        `woke ${report.woken} held actor(s)${report.notWoken ? `; ${report.notWoken} could not be told and look again at their recheck` : ''}`,
      );
    });
}
