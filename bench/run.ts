/**
 * `npm run bench`: the archive/restore suite, one after the other on one private MariaDB: archive and
 * restore against pt-archiver (1-3), growth (4), actor scale (5). Each part prints its Markdown and
 * saves its figures under .data/bench/ (a run worth keeping goes into docs/benchmark-runs/).
 *
 *   npm run bench                    all three parts, one after the other
 *   BENCH_ONLY=archive,growth npm run bench
 *   npm run bench:archive | bench:growth | bench:actors       one part
 */
import { actorsBench } from './actors';
import { archiveBench } from './archive';
import { growthBench } from './growth';
import { exitWhenSettled, log } from './lib/report';
import { startBenchServer } from './lib/server';

const PARTS = {
  archive: archiveBench,
  growth: growthBench,
  actors: actorsBench,
} as const;

async function main(): Promise<void> {
  const only = (process.env.BENCH_ONLY || Object.keys(PARTS).join(',')).split(',').map((s) => s.trim());
  for (const name of only)
    if (!(name in PARTS)) throw new Error(`BENCH_ONLY: unknown part "${name}"; parts: ${Object.keys(PARTS).join(', ')}`);
  const server = await startBenchServer(log);
  try {
    for (const name of only) {
      log(`=== ${name} ===`);
      const result = await PARTS[name as keyof typeof PARTS](server);
      process.stdout.write(`\n## ${name}\n\n${result.markdown}\n`);
    }
  } finally {
    await server.stop();
  }
}

exitWhenSettled(main());
