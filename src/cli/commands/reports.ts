import type { Command } from 'commander';
import { forecast } from '../../reports/forecast';
import { storageReport, type StorageFigures } from '../../reports/storageReport';
import { windowEnd } from '../../reports/window';
import { formatBytes } from '../../shared/units';
import { InvalidInputError } from '../../shared/validation';
import { parseKindOption, parsePositiveIntOption, parseTagOption } from '../args';
import { UsageError, type CliContext } from '../context';
import { instant, json, table } from '../format';

const count = (n: number) => n.toLocaleString('en-US');

export function registerReports(program: Command, ctx: CliContext): void {
  program
    .command('forecast')
    .description('what expires within a window (when, hot rows and bytes), and what is retained and by which audiences')
    .option('--within <duration>', 'the window from now: 30d, 2 weeks, 3 months', '30d')
    .option('--tag <tag>', 'only messages with this tag')
    .option('--kind <kind>', 'campaign or canvas')
    .option('--limit <n>', 'at most this many messages in each part, the earliest first', '1000')
    .option('--json', 'print JSON (as GET /v1/forecast)')
    .action(async (opts: { within: string; tag?: string; kind?: string; limit: string; json?: boolean }) => {
      let until: Date;
      try {
        until = windowEnd(opts.within);
      } catch (err) {
        if (err instanceof InvalidInputError) throw new UsageError(`--within: ${err.message}`);
        throw err;
      }
      const answer = await forecast(await ctx.db(), {
        until,
        limit: parsePositiveIntOption('--limit', opts.limit),
        ...(opts.tag !== undefined ? { tag: parseTagOption('--tag', opts.tag) } : {}),
        ...(opts.kind !== undefined ? { kind: parseKindOption('--kind', opts.kind) } : {}),
      });
      if (opts.json) {
        ctx.out(json(answer));
        return;
      }
      const t = answer.totals;
      ctx.out(
        `until ${instant(answer.until)}: ${count(t.expiring)} message(s) expire; ${count(t.expiring - t.keptByAudiences)} move ` +
          `(${count(t.expiringRows)} hot rows, ${formatBytes(t.expiringBytes)}), ${count(t.keptByAudiences)} kept by audiences today; ` +
          `${count(t.retained)} retained message(s) are counted again`,
      );
      const rows = [
        ...answer.expiring.map((e) => [
          instant(e.at),
          `${e.kind}:${e.id}`,
          e.name ?? '',
          e.activeReferences > 0 ? 'kept' : 'moves',
          count(e.hotRows),
          formatBytes(e.hotBytes),
          e.audiences.map((a) => `${a.type} ${a.name ?? a.id}`).join(', '),
        ]),
        ...answer.retained.map((e) => [
          instant(e.at),
          `${e.kind}:${e.id}`,
          e.name ?? '',
          'retained',
          count(e.hotRows),
          formatBytes(e.hotBytes),
          e.audiences.map((a) => `${a.type} ${a.name ?? a.id}`).join(', '),
        ]),
      ];
      if (rows.length > 0)
        for (const line of table(['AT', 'MESSAGE', 'NAME', 'THEN', 'HOT ROWS', 'HOT BYTES', 'KEPT BY'], rows)) ctx.out(line);
      if (answer.truncated) ctx.err(`(only the earliest ${opts.limit} of each part; raise --limit or narrow --within)`);
    });

  program
    .command('report')
    .description('storage report: messages by state; hot and archived rows and bytes by kind, tag and month of expiry')
    .option('--json', 'print JSON (as GET /v1/storage)')
    .action(async (opts: { json?: boolean }) => {
      const report = await storageReport(await ctx.db());
      if (opts.json) {
        ctx.out(json(report));
        return;
      }
      const states = Object.entries(report.byState)
        .map(([state, n]) => `${state} ${count(n)}`)
        .join(', ');
      ctx.out(`messages by state: ${states}`);
      const figures = (f: StorageFigures) => [
        count(f.messages),
        count(f.hotRows),
        formatBytes(f.hotBytes),
        count(f.archivedRows),
        formatBytes(f.archivedBytes),
      ];
      const headers = ['MESSAGES', 'HOT ROWS', 'HOT BYTES', 'ARCHIVED ROWS', 'ARCHIVED BYTES'];
      ctx.out('');
      for (const line of table(
        ['KIND', ...headers],
        [...report.byKind.map((k) => [k.kind, ...figures(k)]), ['all', ...figures(report.total)]],
      ))
        ctx.out(line);
      ctx.out('');
      for (const line of table(
        ['EXPIRY MONTH', ...headers],
        report.byExpiryMonth.map((m) => [m.month, ...figures(m)]),
      ))
        ctx.out(line);
      if (report.byTag.length > 0) {
        ctx.out('');
        for (const line of table(
          ['TAG', ...headers],
          report.byTag.map((t) => [t.tag, ...figures(t)]),
        ))
          ctx.out(line);
      }
    });
}
