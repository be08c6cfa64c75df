import type { Command } from 'commander';
import { configuredStores } from '../../archive/configuredStores';
import { moveGenerationsToS3, planMove, type MoveOptions } from '../../archive/moveGenerations';
import { archiveStoreSettings } from '../../config';
import { parsePositiveIntOption, parseRefs, refLabel } from '../args';
import { CommandFailedError, UsageError, type CliContext } from '../context';
import { json } from '../format';
import { startProgress } from '../progress';

interface MigrateOptions {
  to: string;
  limit?: string;
  message?: string;
  dryRun?: boolean;
  json?: boolean;
}

export function registerArchive(program: Command, ctx: CliContext): void {
  const archive = program.command('archive').description('long-term storage itself: where archived generations are kept');
  archive
    .command('migrate')
    .description(
      'move archived generations from the MySQL store to object storage (S3_*), chunk by chunk, each verified before its MySQL copy is deleted; resumable',
    )
    .requiredOption('--to <store>', 'the store to move to: s3')
    .option('--limit <n>', 'at most this many generations this run (oldest first)')
    .option('--message <kind:id>', "only this message's generations")
    .option('--dry-run', 'only say what would move')
    .option('--json', 'print the outcome as JSON')
    .action(async (opts: MigrateOptions) => {
      if (opts.to !== 's3') throw new UsageError(`--to must be s3 (moving back to MySQL is not offered), got ${JSON.stringify(opts.to)}`);
      const move: MoveOptions = {};
      if (opts.limit !== undefined) move.limit = parsePositiveIntOption('--limit', opts.limit);
      if (opts.message !== undefined) {
        const [ref] = parseRefs([opts.message]);
        move.message = ref;
      }
      let settings;
      try {
        settings = archiveStoreSettings(ctx.io.env ?? process.env);
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
      if (!settings.s3)
        throw new UsageError('no object store is configured: set S3_BUCKET (and S3_ENDPOINT, S3_REGION, credentials) first');
      const db = await ctx.db();
      const plan = await planMove(db, move);
      if (opts.dryRun || plan.chunks === 0) {
        const what = `${plan.generations} generation(s), ${plan.chunks} chunk(s), ${plan.rows} row(s), ${plan.bytes} byte(s) in MySQL`;
        ctx.out(
          opts.json
            ? json({ dryRun: Boolean(opts.dryRun), plan })
            : plan.chunks === 0
              ? 'nothing to move: no archived generation is in MySQL'
              : `would move ${what}`,
        );
        return;
      }
      const archiveStores = configuredStores({ archiveStore: 's3', s3: settings.s3, archiveCodecThreads: 1 });
      const progress = startProgress(ctx, {
        label: 'moving to S3',
        total: plan.chunks,
        unit: 'chunks',
        plainLines: false,
        minTotalForBar: 2,
      });
      const skipped: { message: string; generation: number; why: string }[] = [];
      try {
        const outcome = await moveGenerationsToS3(db, archiveStores.stores, {
          ...move,
          onChunk: () => progress.tick(),
          onSkipped: (key, why) => {
            const message = refLabel({ kind: key.message_kind as 'campaign', id: key.message_id });
            skipped.push({ message, generation: key.generation, why });
            progress.log(`left ${message} generation ${key.generation} for a later run: ${why}`);
          },
        });
        progress.stop();
        if (opts.json) ctx.out(json({ ...outcome, skippedGenerations: skipped }));
        else
          ctx.out(
            `moved ${outcome.chunks} chunk(s), ${outcome.rows} row(s) of ${outcome.generations} generation(s) to ${archiveStores.stores.target.location}` +
              (outcome.skipped ? `; ${outcome.skipped} left for a later run` : ''),
          );
      } catch (err) {
        progress.stop();
        throw new CommandFailedError(
          `the move stopped: ${(err as Error).message}. Every chunk is either still in MySQL or already switched to its verified object; run the command again to carry on`,
        );
      } finally {
        await archiveStores.close();
      }
    });
}
