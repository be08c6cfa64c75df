/**
 * Progress for commands that take more than a moment: a bar on a terminal, plain lines otherwise,
 * always on stderr so that stdout stays clean for the results (and for scripts reading them).
 */
import cliProgress from 'cli-progress';
import type { CliContext } from './context';

export interface Progress {
  /** One more item done; note says which, for plain-line output. */
  tick(note?: string): void;
  /** Writes a line above the bar without breaking it. */
  log(line: string): void;
  stop(): void;
}

export interface ProgressOptions {
  label: string;
  total: number;
  unit: string;
  /** Without a terminal, print one line per finished item (for long waits; off for quick batches). */
  plainLines?: boolean;
  /** Below this many items a bar would only flash by. */
  minTotalForBar?: number;
}

export function startProgress(ctx: CliContext, options: ProgressOptions): Progress {
  const { label, total, unit } = options;
  let value = 0;
  const stderr = ctx.io.stderr;

  if (stderr.isTTY && total >= (options.minTotalForBar ?? 1)) {
    const bar = new cliProgress.SingleBar(
      {
        stream: stderr as NodeJS.WritableStream,
        format: `${label} [{bar}] {value}/{total} ${unit} | {duration_formatted}`,
        hideCursor: true,
        clearOnComplete: false,
        // Redraws while waiting so the elapsed time keeps moving even when nothing finishes.
        fps: 5,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0);
    let stopped = false;
    return {
      tick: () => {
        value++;
        bar.update(value);
      },
      log: (line) => {
        // Clear the bar's line, print, and let the next redraw put the bar back underneath.
        stderr.write(`\r\x1b[2K${line}\n`);
        bar.render();
      },
      stop: () => {
        if (stopped) return;
        stopped = true;
        bar.stop();
      },
    };
  }

  return {
    tick: (note) => {
      value++;
      if (options.plainLines) ctx.err(`${label}: ${value}/${total} ${unit}${note ? ` (${note})` : ''}`);
    },
    log: (line) => ctx.err(line),
    stop: () => undefined,
  };
}

/** Runs fn over items, a few at a time, keeping results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index], index);
    }
  });
  await Promise.all(workers);
  return results;
}
