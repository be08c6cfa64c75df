/**
 * Provides the official Temporal CLI (which embeds the dev server) without asking anyone to
 * install it: built once from its Go module into .tools/ (scripts/goTool.ts).
 *
 *   tsx scripts/ensureTemporal.ts      # prints the absolute path of the binary
 */
import { ensureGoTool, goToolPath, printGoToolPath, type EnsureOptions, type GoTool } from './goTool';

export type { EnsureOptions } from './goTool';

export const TEMPORAL_CLI_VERSION = 'v1.5.1';
export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal';

const TEMPORAL_CLI: GoTool = {
  name: 'temporal',
  module: TEMPORAL_CLI_MODULE,
  version: TEMPORAL_CLI_VERSION,
  pathVariable: 'TEMPORAL_CLI_PATH',
  builtFromSource: (version) => `The Temporal CLI ${version}`,
  building: (version) => `building Temporal CLI ${version} (first run only, a few minutes)`,
  logName: 'temporal-cli',
  ready: 'Temporal CLI ready',
};

export function temporalBinaryPath(version = TEMPORAL_CLI_VERSION, toolsDir?: string): string {
  return goToolPath(TEMPORAL_CLI, version, toolsDir);
}

/**
 * Returns the absolute path of a working Temporal CLI: TEMPORAL_CLI_PATH when set, else the pinned
 * version under .tools/, building it with `go install` the first time.
 */
export function ensureTemporalBinary(opts: EnsureOptions = {}): Promise<string> {
  return ensureGoTool(TEMPORAL_CLI, opts);
}

if (require.main === module) printGoToolPath(TEMPORAL_CLI);
