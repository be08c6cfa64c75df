/**
 * Provides Versity Gateway (an S3 server over a plain directory), which `npm start` and the tests run
 * as the archive's object store, without asking anyone to install it: built once from its Go module
 * into .tools/ (scripts/goTool.ts).
 *
 *   tsx scripts/ensureVersity.ts      # prints the absolute path of the binary
 */
import { ensureGoTool, goToolPath, printGoToolPath, type EnsureOptions, type GoTool } from './goTool';

export type { EnsureOptions } from './goTool';

export const VERSITYGW_VERSION = 'v1.8.0';
export const VERSITYGW_MODULE = 'github.com/versity/versitygw/cmd/versitygw';

const VERSITYGW: GoTool = {
  name: 'versitygw',
  module: VERSITYGW_MODULE,
  version: VERSITYGW_VERSION,
  pathVariable: 'VERSITYGW_PATH',
  // The upstream Makefile stamps the version the same way; without it `--version` says "git".
  installFlags: (version) => [`-ldflags=-X=main.Version=${version}`],
  builtFromSource: (version) => `Versity Gateway ${version} (the local S3 server)`,
  building: (version) => `building Versity Gateway ${version}, the local S3 server (first run only, a few minutes)`,
  logName: 'versitygw',
  ready: 'Versity Gateway ready',
  reportedVersion: (output) => /^Version\s*:\s*(\S+)/m.exec(output)?.[1] ?? output,
};

export function versityBinaryPath(version = VERSITYGW_VERSION, toolsDir?: string): string {
  return goToolPath(VERSITYGW, version, toolsDir);
}

/**
 * Returns the absolute path of a working versitygw: VERSITYGW_PATH when set, else the pinned version
 * under .tools/, building it with `go install` the first time.
 */
export function ensureVersityBinary(opts: EnsureOptions = {}): Promise<string> {
  return ensureGoTool(VERSITYGW, opts);
}

if (require.main === module) printGoToolPath(VERSITYGW);
