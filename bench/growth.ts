/**
 * Benchmark 4: archive and restore of one message at growing sizes (default 100,000, 1,000,000 and
 * 5,000,000 rows), each among the same 1,000,000 rows of other messages, by the service (actor and
 * worker child process, as in bench/archive.ts). Time should grow linearly with the rows: the report
 * gives seconds per million rows at each size and the ratio of the largest to the smallest.
 *
 *   npm run bench:growth
 *   BENCH_GROWTH_SIZES=100000,500000 npm run bench:growth
 */
import { randomBytes } from 'node:crypto';
import { createBenchDatabase, generateInteractions, TARGET } from './lib/dataset';
import { fmtInt, fmtMB, uptimeLine } from './lib/proc';
import { envInt, envIntList, exitWhenSettled, log, saveResults, table, verdict } from './lib/report';
import { runOnBenchServer, type BenchServer } from './lib/server';
import { archiveAndRestore, type ServiceRun } from './lib/service';

export interface GrowthPoint {
  rows: number;
  run: ServiceRun;
}

export interface GrowthResult {
  server: string;
  otherRows: number;
  points: GrowthPoint[];
  uptimeBefore: string;
  uptimeAfter: string;
  markdown: string;
}

/** Linear enough: seconds per million rows at the largest size within 1.5x of the smallest. */
const LINEARITY_TOLERANCE = 1.5;

export async function growthBench(server: BenchServer): Promise<GrowthResult> {
  const sizes = envIntList('BENCH_GROWTH_SIZES', [100_000, 1_000_000, 5_000_000]);
  const otherRows = envInt('BENCH_GROWTH_OTHER_ROWS', 1_000_000);
  const uptimeBefore = uptimeLine();
  log(`growth benchmark: ${sizes.map(fmtInt).join(', ')} rows of one message among ${fmtInt(otherRows)} others`);
  log(uptimeBefore);
  log(`server: ${server.description}`);
  const points: GrowthPoint[] = [];
  for (const rows of sizes) {
    const bench = await createBenchDatabase(server.url, `bench_growth_${randomBytes(3).toString('hex')}`);
    try {
      log(`${fmtInt(rows)} rows: generating`);
      await generateInteractions(bench.db, { targetRows: rows, otherRows });
      points.push({ rows, run: await archiveAndRestore(bench, TARGET, { log, dbPid: server.pid }) });
    } finally {
      if (!process.env.BENCH_KEEP) await bench.drop();
    }
  }
  const uptimeAfter = uptimeLine();
  log(uptimeAfter);
  const perMillion = (seconds: number, rows: number) => (seconds / rows) * 1e6;
  const first = points[0];
  const last = points[points.length - 1];
  const growth = (pick: (r: ServiceRun) => number) => perMillion(pick(last.run), last.rows) / perMillion(pick(first.run), first.rows);
  const archiveGrowth = growth((r) => r.archive.activitySeconds);
  const restoreGrowth = growth((r) => r.restore.activitySeconds);
  const markdown = [
    `Server: ${server.description}. Each size among ${fmtInt(otherRows)} rows of other messages, on a fresh database.`,
    '',
    table(
      [
        'rows',
        'archive s',
        'archive s per 1M rows',
        'restore s',
        'restore s per 1M rows',
        'worker peak RSS (archive / restore)',
        'long-term bytes',
      ],
      points.map((p) => [
        fmtInt(p.rows),
        p.run.archive.activitySeconds.toFixed(1),
        perMillion(p.run.archive.activitySeconds, p.rows).toFixed(1),
        p.run.restore.activitySeconds.toFixed(1),
        perMillion(p.run.restore.activitySeconds, p.rows).toFixed(1),
        `${fmtMB(p.run.archive.workerHwm)} / ${fmtMB(p.run.restore.workerHwm)}`,
        fmtMB(p.run.payloadBytes),
      ]),
    ),
    '',
    table(
      ['target', 'figure', 'result'],
      [
        [
          `archive time linear (s per 1M rows at ${fmtInt(last.rows)} within ${LINEARITY_TOLERANCE}x of ${fmtInt(first.rows)})`,
          `${archiveGrowth.toFixed(2)}x`,
          verdict(archiveGrowth <= LINEARITY_TOLERANCE),
        ],
        [`restore time linear (same)`, `${restoreGrowth.toFixed(2)}x`, verdict(restoreGrowth <= LINEARITY_TOLERANCE)],
      ],
    ),
    '',
    `Load: before \`${uptimeBefore}\`; after \`${uptimeAfter}\`.`,
  ].join('\n');
  const result: GrowthResult = { server: server.description, otherRows, points, uptimeBefore, uptimeAfter, markdown };
  log(`results: ${saveResults('growth', result)}`);
  return result;
}

if (require.main === module) exitWhenSettled(runOnBenchServer(growthBench), 'bench:growth');
