/**
 * Runs Temporal's own dev server (`temporal server start-dev`) as a child process, persisted to a
 * SQLite file so that workflows and their timers survive a restart of the server, or a crash.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import type { Logger } from '../logger';

/**
 * The dev server's SQLite in WAL mode, synced at checkpoints rather than at every commit. In its own
 * defaults (a rollback journal, an fsync per commit) the server's single connection waits on the disk
 * for every transaction, which on a small machine bounds what actors get done and takes CPU that MySQL
 * and the worker beside it need (docs/SCALING.md). Nothing committed is lost when the server's process
 * dies (the restart tests kill it); only a crash of the machine itself can roll back its last commits.
 */
export const DEV_SERVER_SQLITE_PRAGMAS: Readonly<Record<string, string>> = { journal_mode: 'wal', synchronous: 'normal' };

export interface DevServerOptions {
  /** Absolute path of the Temporal CLI, see scripts/ensureTemporal.ts. */
  binary: string;
  /** Front-end gRPC port (what workers and clients dial). */
  port: number;
  /** Web UI port; null runs the server headless, which tests prefer. */
  uiPort: number | null;
  /** SQLite file holding all server state; reuse it to get the same workflows back after a restart. */
  dbFile: string;
  /** Created in addition to "default", which the dev server always has. */
  namespace?: string;
  /** Interface to bind; loopback keeps the unauthenticated server off the network. */
  ip?: string;
  logLevel?: 'debug' | 'info' | 'warn' | 'error' | 'never';
  /** Server dynamic config overrides (`--dynamic-config-value KEY=JSON`), e.g. lower limits so tests reach them. */
  dynamicConfig?: Record<string, string | number | boolean | null | object>;
  /** SQLite pragmas (`--sqlite-pragma NAME=VALUE`); DEV_SERVER_SQLITE_PRAGMAS unless given (`{}`: SQLite's own). */
  sqlitePragmas?: Record<string, string>;
  /** How long to wait for the server to answer before giving up. */
  startTimeoutMs?: number;
  /** Receives the server's own output at debug level, and lifecycle events. */
  log?: Logger;
}

export interface DevServerHandle {
  /** host:port for TEMPORAL_ADDRESS. */
  readonly address: string;
  readonly port: number;
  readonly uiPort: number | null;
  /** Web UI address, or null when headless. */
  readonly uiUrl: string | null;
  readonly namespace: string;
  readonly dbFile: string;
  readonly pid: number;
  /** Resolves once the process has exited, however that happened. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Graceful shutdown: SIGTERM, then SIGKILL if the server has not exited after the grace period. */
  stop(graceMs?: number): Promise<void>;
  /** Simulates a crash: SIGKILL, no chance to flush anything beyond what SQLite already committed. */
  kill(): Promise<void>;
  /** Last lines the server wrote, for error messages. */
  outputTail(lines?: number): string;
}

/** Asks the OS for a free TCP port. Another process may still take it before it is used; callers that care retry. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ host, port: 0, exclusive: true }, () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        reject(new Error('could not determine a free port'));
        return;
      }
      const { port } = addr;
      srv.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

/**
 * Bounded memory for the server's output: its first lines and its tail. A Go panic names its cause on
 * the line that starts the goroutine dump, which can be hundreds of lines before the end.
 */
class OutputTail {
  private lines: string[] = [];
  private head: string[] = [];
  private partial = '';
  private dropped = 0;
  constructor(
    private readonly max = 200,
    private readonly headMax = 10,
  ) {}

  push(chunk: string, onLine: (line: string) => void): void {
    const parts = (this.partial + chunk).split('\n');
    this.partial = parts.pop() ?? '';
    for (const line of parts) {
      if (!line.trim()) continue;
      if (this.head.length < this.headMax) this.head.push(line);
      else this.lines.push(line);
      onLine(line);
    }
    if (this.lines.length > this.max) this.dropped += this.lines.splice(0, this.lines.length - this.max).length;
  }

  /** The first lines, then the last `n` (with how many were left out between them). */
  tail(n: number): string {
    const rest = this.partial.trim() ? [...this.lines, this.partial] : this.lines;
    const skipped = this.dropped + Math.max(0, rest.length - n);
    return [...this.head, ...(skipped > 0 ? [`… ${skipped} lines …`] : []), ...rest.slice(-n)].join('\n');
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startDevServer(opts: DevServerOptions): Promise<DevServerHandle> {
  const ip = opts.ip ?? '127.0.0.1';
  const namespace = opts.namespace ?? 'default';
  const logLevel = opts.logLevel ?? 'warn';
  const startTimeoutMs = opts.startTimeoutMs ?? 60_000;
  const dbFile = path.resolve(opts.dbFile);
  const address = `${ip}:${opts.port}`;
  const log = opts.log;

  await fs.mkdir(path.dirname(dbFile), { recursive: true });

  const args = ['server', 'start-dev', '--ip', ip, '--port', String(opts.port), '--db-filename', dbFile, '--log-level', logLevel];
  // "default" is always created; naming it again is redundant.
  if (namespace !== 'default') args.push('--namespace', namespace);
  for (const [key, value] of Object.entries(opts.dynamicConfig ?? {})) {
    args.push('--dynamic-config-value', `${key}=${JSON.stringify(value)}`);
  }
  for (const [name, value] of Object.entries(opts.sqlitePragmas ?? DEV_SERVER_SQLITE_PRAGMAS))
    args.push('--sqlite-pragma', `${name}=${value}`);
  if (opts.uiPort === null) args.push('--headless');
  else args.push('--ui-port', String(opts.uiPort));

  // The CLI checks this too, but a clear message here beats a timeout, and it keeps the readiness
  // probe below from mistaking somebody else's server on that port for ours.
  await assertPortFree(ip, opts.port, 'the Temporal dev server', ' (another Temporal server?)');

  const child: ChildProcess = spawn(opts.binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const output = new OutputTail();
  const forward = (line: string) => log?.debug({ temporal: line }, 'temporal dev server');
  // start-dev prints "Server:  host:port" only once its own services have started; until then a
  // server answering on the port could still be a different process.
  let announced = false;
  child.stdout?.setEncoding('utf8').on('data', (c: string) =>
    output.push(c, (line) => {
      if (/^Server:\s/.test(line.trim())) announced = true;
      forward(line);
    }),
  );
  child.stderr?.setEncoding('utf8').on('data', (c: string) => output.push(c, forward));

  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  let spawnError: Error | null = null;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('error', (err) => {
      spawnError = err;
      // 'close' does not follow a failed spawn.
      if (child.pid === undefined) {
        exitInfo = { code: null, signal: null };
        resolve(exitInfo);
      }
    });
    child.once('close', (code, signal) => {
      exitInfo = { code, signal };
      resolve(exitInfo);
    });
  });

  // If this process goes away without stopping the server, the server would keep the port and the
  // SQLite file busy for the next run; SIGTERM lets it shut down cleanly on its own.
  const onParentExit = () => {
    if (exitInfo === null) child.kill('SIGTERM');
  };
  process.once('exit', onParentExit);
  void exited.then(() => process.removeListener('exit', onParentExit));

  const stopWith = async (graceMs: number | null): Promise<void> => {
    if (exitInfo !== null) return;
    if (graceMs === null) {
      child.kill('SIGKILL');
      await exited;
      return;
    }
    child.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (exitInfo === null) {
        log?.warn({ pid: child.pid, graceMs }, 'temporal dev server ignored SIGTERM; killing it');
        child.kill('SIGKILL');
      }
    }, graceMs);
    try {
      await exited;
    } finally {
      clearTimeout(timer);
    }
  };

  const describeFailure = (why: string) => {
    const tail = output.tail(40);
    return new Error(
      `Temporal dev server (${opts.binary} ${args.join(' ')}) ${why}` + (tail ? `\n--- server output (tail) ---\n${tail}` : ''),
    );
  };

  try {
    await waitUntilReady(
      address,
      namespace,
      startTimeoutMs,
      () => announced,
      () => {
        if (spawnError && child.pid === undefined) throw describeFailure(`could not be started: ${spawnError.message}`);
        if (exitInfo !== null) {
          throw describeFailure(`exited during start-up (${exitInfo.signal ?? `exit code ${exitInfo.code}`})`);
        }
      },
    );
  } catch (err) {
    await stopWith(2_000);
    if (err instanceof TimeoutError) {
      throw describeFailure(`did not answer on ${address} (namespace "${namespace}") within ${startTimeoutMs} ms: ${err.message}`);
    }
    throw err;
  }

  const uiUrl = opts.uiPort === null ? null : `http://${ip}:${opts.uiPort}`;
  log?.info({ address, uiUrl, dbFile, pid: child.pid }, 'temporal dev server ready');

  return {
    address,
    port: opts.port,
    uiPort: opts.uiPort,
    uiUrl,
    namespace,
    dbFile,
    pid: child.pid as number,
    exited,
    stop: (graceMs = 10_000) => stopWith(graceMs),
    kill: () => stopWith(null),
    outputTail: (lines = 40) => output.tail(lines),
  };
}

/**
 * Starts a dev server on a port the OS reports free, and on another one if something takes that port
 * first. A port from freePort() is an ephemeral port, which any outgoing connection may be handed
 * before the server binds it: a benchmark opening many MySQL connections lost its server to that.
 */
export async function startDevServerOnFreePort(opts: Omit<DevServerOptions, 'port'>, attempts = 3): Promise<DevServerHandle> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort(opts.ip);
    try {
      return await startDevServer({ ...opts, port });
    } catch (err) {
      if (attempt >= attempts || !/address already in use|is already in use/.test((err as Error).message)) throw err;
      opts.log?.warn({ port, attempt }, 'temporal dev server port taken before the server bound it; trying another');
    }
  }
}

class TimeoutError extends Error {}

/**
 * Fails with a message naming `what` when something listens on host:port already; `hint` says what that
 * may be. A port checked here can still be taken before the server binds it (callers retry for that).
 */
export function assertPortFree(host: string, port: number, what: string, hint = ''): Promise<void> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new Error(
          err.code === 'EADDRINUSE'
            ? `Cannot start ${what}: ${host}:${port} is already in use${hint}. Stop what listens there or choose another port.`
            : `Cannot start ${what} on ${host}:${port}: ${err.message}`,
        ),
      ),
    );
    srv.listen({ host, port, exclusive: true }, () => srv.close(() => resolve()));
  });
}

/**
 * The gRPC port opens before the namespace is served, so "ready" means the namespace answers, which
 * is what a worker or client needs.
 */
async function waitUntilReady(
  address: string,
  namespace: string,
  timeoutMs: number,
  announced: () => boolean,
  checkAlive: () => void,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = 'the server has not reported that it started';
  while (Date.now() < deadline) {
    checkAlive();
    if (!announced()) {
      await sleep(100);
      continue;
    }
    let connection: Connection | null = null;
    try {
      connection = await Connection.connect({ address, connectTimeout: 2_000 });
      await connection.workflowService.describeNamespace({ namespace });
      return;
    } catch (err) {
      lastError = (err as Error).message;
    } finally {
      await connection?.close().catch(() => undefined);
    }
    checkAlive();
    await sleep(250);
  }
  throw new TimeoutError(lastError);
}
