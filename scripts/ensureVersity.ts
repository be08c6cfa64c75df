/**
 * Provides Versity Gateway (an S3 server over a plain directory), which `npm start` and the tests run
 * as the archive's object store, without asking anyone to install it: the binary is built once from its
 * Go module into .tools/, keyed by version so that bumping the pin rebuilds instead of silently reusing
 * an older gateway.
 *
 *   tsx scripts/ensureVersity.ts      # prints the absolute path of the binary
 */
import { spawn, execFile } from 'node:child_process';
import { promises as fs, constants as fsConstants } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { createLogger, type Logger } from '../src/logger';

export const VERSITYGW_VERSION = 'v1.8.0';
export const VERSITYGW_MODULE = 'github.com/versity/versitygw/cmd/versitygw';

const REPO_ROOT = path.resolve(__dirname, '..');
const BINARY_NAME = process.platform === 'win32' ? 'versitygw.exe' : 'versitygw';

/** Where the pinned version lives; the version is part of the path so a pin bump triggers a build. */
export function versityBinaryPath(version = VERSITYGW_VERSION, toolsDir = path.join(REPO_ROOT, '.tools')): string {
  return path.join(toolsDir, `versitygw-${version}`, BINARY_NAME);
}

/** Resolves with the version lines, or null when the file is missing, not executable or broken. */
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
    // The upstream Makefile stamps the version the same way; without it `--version` says "git".
    const child = spawn('go', ['install', `-ldflags=-X=main.Version=${version}`, `${VERSITYGW_MODULE}@${version}`], {
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
            `Versity Gateway ${version} (the local S3 server) is built from source on first run, but "go" is not on PATH. ` +
              `Install Go 1.22+ from https://go.dev/dl (the module needs Go 1.25, which Go 1.21+ fetches by itself), ` +
              `or set VERSITYGW_PATH to an existing versitygw binary.`,
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
          `go install ${VERSITYGW_MODULE}@${version} failed (${signal ?? `exit ${code}`}). ` +
            `Set VERSITYGW_PATH to an existing versitygw binary to skip the build.\n${tail(output)}`,
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
 * Returns the absolute path of a working versitygw: VERSITYGW_PATH when set, else the pinned version
 * under .tools/, building it with `go install` the first time.
 */
export function ensureVersityBinary(opts: EnsureOptions = {}): Promise<string> {
  // Several tests in one process may ask at once; they share one build.
  const key = [process.env.VERSITYGW_PATH ?? '', opts.version ?? VERSITYGW_VERSION, opts.toolsDir ?? ''].join('\0');
  let pending = inFlight.get(key);
  if (!pending) {
    pending = resolveBinary(opts).finally(() => inFlight.delete(key));
    inFlight.set(key, pending);
  }
  return pending;
}

async function resolveBinary(opts: EnsureOptions): Promise<string> {
  const version = opts.version ?? VERSITYGW_VERSION;

  const override = process.env.VERSITYGW_PATH;
  if (override) {
    const abs = path.resolve(override);
    if ((await probeVersion(abs)) === null) {
      throw new Error(`VERSITYGW_PATH=${override} does not run "versitygw --version"; unset it to build ${version} into .tools/.`);
    }
    return abs;
  }

  const target = versityBinaryPath(version, opts.toolsDir);
  if ((await probeVersion(target)) !== null) return target;

  const log = opts.log ?? createLogger('versitygw');
  log.info(`building Versity Gateway ${version}, the local S3 server (first run only, a few minutes)`);
  const started = Date.now();

  // Build into a private folder and rename into place, so a concurrent process (or an interrupted
  // build) never sees a half-written binary at the final path.
  const targetDir = path.dirname(target);
  await fs.mkdir(path.dirname(targetDir), { recursive: true });
  const staging = await fs.mkdtemp(path.join(path.dirname(targetDir), `.build-versitygw-${version}-`));
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
  if (reported === null) throw new Error(`Built ${target} but it does not run "versitygw --version".`);
  log.info(
    {
      binary: target,
      version: /^Version\s*:\s*(\S+)/m.exec(reported)?.[1] ?? reported,
      seconds: Math.round((Date.now() - started) / 1000),
    },
    'Versity Gateway ready',
  );
  return target;
}

if (require.main === module) {
  // stdout carries only the path, so `$(tsx scripts/ensureVersity.ts)` works; progress goes to stderr.
  const log = pino({ name: 'versitygw', level: process.env.LOG_LEVEL || 'info' }, pino.destination(2));
  ensureVersityBinary({ log }).then(
    (binary) => {
      process.stdout.write(`${binary}\n`);
    },
    (err: Error) => {
      log.error(err.message);
      process.exitCode = 1;
    },
  );
}
