/**
 * Provides the official Temporal CLI (which embeds the dev server) without asking anyone to
 * install it: the binary is built once from its Go module into .tools/, keyed by version so that
 * bumping the pin rebuilds instead of silently reusing an older server.
 *
 *   tsx scripts/ensureTemporal.ts      # prints the absolute path of the binary
 */
import { spawn, execFile } from 'node:child_process';
import { promises as fs, constants as fsConstants } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { createLogger, type Logger } from '../src/logger';

export const TEMPORAL_CLI_VERSION = 'v1.5.1';
export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal';

const REPO_ROOT = path.resolve(__dirname, '..');
const BINARY_NAME = process.platform === 'win32' ? 'temporal.exe' : 'temporal';

/** Where the pinned version lives; the version is part of the path so a pin bump triggers a build. */
export function temporalBinaryPath(version = TEMPORAL_CLI_VERSION, toolsDir = path.join(REPO_ROOT, '.tools')): string {
  return path.join(toolsDir, `temporal-${version}`, BINARY_NAME);
}

/** Resolves with the version line, or null when the file is missing, not executable or broken. */
function probeVersion(binary: string): Promise<string | null> {
  return new Promise((resolve) => {
    execFile(binary, ['--version'], { timeout: 15_000 }, (err, stdout) => {
      resolve(err ? null : stdout.trim());
    });
  });
}

function tail(text: string, lines = 30): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

function runGoInstall(gobin: string, version: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = '';
    const child = spawn('go', ['install', `${TEMPORAL_CLI_MODULE}@${version}`], {
      cwd: REPO_ROOT,
      env: { ...process.env, GOBIN: gobin },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') {
        reject(
          new Error(
            `The Temporal CLI ${version} is built from source on first run, but "go" is not on PATH. ` +
              `Install Go 1.22+ from https://go.dev/dl (the module needs Go 1.25, which Go 1.21+ fetches by itself), ` +
              `or set TEMPORAL_CLI_PATH to an existing temporal binary.`,
          ),
        );
      } else {
        reject(err);
      }
    });
    child.on('close', (code, signal) => {
      if (code === 0) return resolve();
      reject(
        new Error(
          `go install ${TEMPORAL_CLI_MODULE}@${version} failed (${signal ?? `exit ${code}`}). ` +
            `Set TEMPORAL_CLI_PATH to an existing temporal binary to skip the build.\n${tail(output)}`,
        ),
      );
    });
  });
}

export interface EnsureOptions {
  log?: Logger;
  version?: string;
  /** Defaults to the repository's .tools folder. */
  toolsDir?: string;
}

const inFlight = new Map<string, Promise<string>>();

/**
 * Returns the absolute path of a working Temporal CLI: TEMPORAL_CLI_PATH when set, else the pinned
 * version under .tools/, building it with `go install` the first time.
 */
export function ensureTemporalBinary(opts: EnsureOptions = {}): Promise<string> {
  // Several tests in one process may ask at once; they share one build.
  const key = [process.env.TEMPORAL_CLI_PATH ?? '', opts.version ?? TEMPORAL_CLI_VERSION, opts.toolsDir ?? ''].join('\0');
  let pending = inFlight.get(key);
  if (!pending) {
    pending = resolveBinary(opts).finally(() => inFlight.delete(key));
    inFlight.set(key, pending);
  }
  return pending;
}

async function resolveBinary(opts: EnsureOptions): Promise<string> {
  const version = opts.version ?? TEMPORAL_CLI_VERSION;

  const override = process.env.TEMPORAL_CLI_PATH;
  if (override) {
    const abs = path.resolve(override);
    if ((await probeVersion(abs)) === null) {
      throw new Error(`TEMPORAL_CLI_PATH=${override} does not run "temporal --version"; unset it to build ${version} into .tools/.`);
    }
    return abs;
  }

  const target = temporalBinaryPath(version, opts.toolsDir);
  if ((await probeVersion(target)) !== null) return target;

  const log = opts.log ?? createLogger('temporal-cli');
  log.info(`building Temporal CLI ${version} (first run only, a few minutes)`);
  const started = Date.now();

  // Build into a private folder and rename into place, so a concurrent process (or an interrupted
  // build) never sees a half-written binary at the final path.
  const targetDir = path.dirname(target);
  await fs.mkdir(path.dirname(targetDir), { recursive: true });
  const staging = await fs.mkdtemp(path.join(path.dirname(targetDir), `.build-temporal-${version}-`));
  try {
    await runGoInstall(staging, version);
    const built = path.join(staging, BINARY_NAME);
    await fs.access(built, fsConstants.X_OK);
    await fs.mkdir(targetDir, { recursive: true });
    await fs.rename(built, target);
  } finally {
    await fs.rm(staging, { recursive: true, force: true });
  }

  const reported = await probeVersion(target);
  if (reported === null) throw new Error(`Built ${target} but it does not run "temporal --version".`);
  log.info({ binary: target, version: reported, seconds: Math.round((Date.now() - started) / 1000) }, 'Temporal CLI ready');
  return target;
}

if (require.main === module) {
  // stdout carries only the path, so `$(tsx scripts/ensureTemporal.ts)` works; progress goes to stderr.
  const log = pino({ name: 'temporal-cli', level: process.env.LOG_LEVEL || 'info' }, pino.destination(2));
  ensureTemporalBinary({ log }).then(
    (binary) => {
      process.stdout.write(`${binary}\n`);
    },
    (err: Error) => {
      log.error(err.message);
      process.exitCode = 1;
    },
  );
}
