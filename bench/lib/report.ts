/** Where benchmark results go: the terminal (Markdown) and a JSON file, which docs/BENCHMARKS.md says how to keep. */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from './stack';

export function log(msg: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

export function table(header: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const line = (cells: readonly (string | number)[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

export function verdict(ok: boolean): string {
  return ok ? 'met' : 'MISSED';
}

/** Writes the run's figures to .data/bench/<name>-<time>.json and returns the path. */
export function saveResults(name: string, results: unknown): string {
  const dir = path.join(REPO_ROOT, '.data', 'bench');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  return file;
}

export function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw.replace(/[_,]/g, ''));
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a whole number, got "${raw}"`);
  return n;
}

/** A comma-separated list of whole numbers (`_` allowed within one), or `fallback` when unset. */
export function envIntList(name: string, fallback: readonly number[]): number[] {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return [...fallback];
  return raw.split(',').map((part) => {
    const n = Number(part.trim().replace(/_/g, ''));
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must list whole numbers, got "${raw}"`);
    return n;
  });
}

/**
 * Ends the process once a benchmark's `main` has settled: 0 when it resolved, 1 with the error's stack
 * when it threw. Exiting outright ends whatever a failed run left open (a child worker, a pool).
 */
export function exitWhenSettled(run: Promise<void>, name?: string): void {
  run.then(
    () => process.exit(0),
    (err: unknown) => {
      const detail = err instanceof Error ? (err.stack ?? err.message) : String(err);
      process.stderr.write(`${name ? `${name} failed: ` : ''}${detail}\n`);
      process.exit(1);
    },
  );
}
