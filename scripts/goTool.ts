/**
 * Provides a tool built from a Go module (the Temporal CLI, the S3 gateway) without asking anyone to
 * install it: the binary is built once with `go install` into .tools/<name>-<version>/, keyed by
 * version so that bumping the pin rebuilds instead of silently reusing an older one; an environment
 * variable may name an existing binary instead.
 */
import { spawn, execFile } from 'node:child_process';
import { promises as fs, constants as fsConstants } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { createLogger, type Logger } from '../src/logger';

const REPO_ROOT = path.resolve(__dirname, '..');

export interface GoTool {
  /** The binary's name, and the folder's under .tools/ (with the version). */
  name: string;
  /** The module's command package, installed at `@<version>`. */
  module: string;
  version: string;
  /** The variable naming an existing binary instead. */
  pathVariable: string;
  /** Flags for `go install` before the package. */
  installFlags?: (version: string) => string[];
  /** How the error for a missing `go` names the tool, e.g. "The Temporal CLI v1.5.1". */
  builtFromSource: (version: string) => string;
  /** The log line when the build starts and the logger's name. */
  building: (version: string) => string;
  logName: string;
  /** The log line when it is ready, and what of `--version`'s output to log. */
  ready: string;
  reportedVersion?: (output: string) => string;
}

export interface EnsureOptions {
  log?: Logger;
  version?: string;
  /** Defaults to the repository's .tools folder. */
  toolsDir?: string;
}

const binaryName = (tool: GoTool) => (process.platform === 'win32' ? `${tool.name}.exe` : tool.name);

/** Where the pinned version lives; the version is part of the path so a pin bump triggers a build. */
export function goToolPath(tool: GoTool, version = tool.version, toolsDir = path.join(REPO_ROOT, '.tools')): string {
  return path.join(toolsDir, `${tool.name}-${version}`, binaryName(tool));
}

/** Resolves with the version output, or null when the file is missing, not executable or broken. */
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

function runGoInstall(tool: GoTool, gobin: string, version: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = '';
    const child = spawn('go', ['install', ...(tool.installFlags?.(version) ?? []), `${tool.module}@${version}`], {
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
            `${tool.builtFromSource(version)} is built from source on first run, but "go" is not on PATH. ` +
              `Install Go 1.22+ from https://go.dev/dl (the module needs Go 1.25, which Go 1.21+ fetches by itself), ` +
              `or set ${tool.pathVariable} to an existing ${tool.name} binary.`,
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
          `go install ${tool.module}@${version} failed (${signal ?? `exit ${code}`}). ` +
            `Set ${tool.pathVariable} to an existing ${tool.name} binary to skip the build.\n${tail(output)}`,
        ),
      );
    });
  });
}

const inFlight = new Map<string, Promise<string>>();

/**
 * Returns the absolute path of a working binary of the tool: the one its variable names when set,
 * else the pinned version under .tools/, building it with `go install` the first time.
 */
export function ensureGoTool(tool: GoTool, opts: EnsureOptions = {}): Promise<string> {
  // Several tests in one process may ask at once; they share one build.
  const key = [tool.name, process.env[tool.pathVariable] ?? '', opts.version ?? tool.version, opts.toolsDir ?? ''].join('\0');
  let pending = inFlight.get(key);
  if (!pending) {
    pending = resolveBinary(tool, opts).finally(() => inFlight.delete(key));
    inFlight.set(key, pending);
  }
  return pending;
}

async function resolveBinary(tool: GoTool, opts: EnsureOptions): Promise<string> {
  const version = opts.version ?? tool.version;

  const override = process.env[tool.pathVariable];
  if (override) {
    const abs = path.resolve(override);
    if ((await probeVersion(abs)) === null) {
      throw new Error(`${tool.pathVariable}=${override} does not run "${tool.name} --version"; unset it to build ${version} into .tools/.`);
    }
    return abs;
  }

  const target = goToolPath(tool, version, opts.toolsDir);
  if ((await probeVersion(target)) !== null) return target;

  const log = opts.log ?? createLogger(tool.logName);
  log.info(tool.building(version));
  const started = Date.now();

  // Build into a private folder and rename into place, so a concurrent process (or an interrupted
  // build) never sees a half-written binary at the final path.
  const targetDir = path.dirname(target);
  await fs.mkdir(path.dirname(targetDir), { recursive: true });
  const staging = await fs.mkdtemp(path.join(path.dirname(targetDir), `.build-${tool.name}-${version}-`));
  try {
    await runGoInstall(tool, staging, version);
    const built = path.join(staging, binaryName(tool));
    await fs.access(built, fsConstants.X_OK);
    await fs.mkdir(targetDir, { recursive: true });
    await fs.rename(built, target);
  } finally {
    await fs.rm(staging, { recursive: true, force: true });
  }

  const reported = await probeVersion(target);
  if (reported === null) throw new Error(`Built ${target} but it does not run "${tool.name} --version".`);
  log.info(
    { binary: target, version: tool.reportedVersion?.(reported) ?? reported, seconds: Math.round((Date.now() - started) / 1000) },
    tool.ready,
  );
  return target;
}

/** The command line of a tool's script: stdout carries only the path, so `$(tsx scripts/…)` works; progress goes to stderr. */
export function printGoToolPath(tool: GoTool): void {
  const log = pino({ name: tool.logName, level: process.env.LOG_LEVEL || 'info' }, pino.destination(2));
  ensureGoTool(tool, { log }).then(
    (binary) => {
      process.stdout.write(`${binary}\n`);
    },
    (err: Error) => {
      log.error(err.message);
      process.exitCode = 1;
    },
  );
}
