/**
 * Makes "clone and run" work without a database administrator: when MYSQL_URL points at this
 * machine and nothing answers there, a private MariaDB/MySQL server is started from the binaries
 * already installed, with its files under .data/mysql. Nothing is installed or configured
 * system-wide, and a server that already answers is always used as it is.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { promises as fs, constants as fsConstants } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import mysql from 'mysql2/promise';
import { parseMysqlUrl } from './knex';
import { mysqlTlsFromEnv } from './mysqlTls';
import type { Logger } from '../logger';

const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const DEFAULT_LOCAL_MYSQL_DIR = path.join(REPO_ROOT, '.data', 'mysql');

const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

export interface LocalMysqlHandle {
  readonly pid: number;
  readonly dataDir: string;
  readonly socketPath: string;
  /** Clean shutdown (SIGTERM lets InnoDB flush); SIGKILL only if that takes longer than the grace period. */
  stop(graceMs?: number): Promise<void>;
}

export interface LocalMysqlOptions {
  /** Where the private server keeps its files; .data/mysql in the repository by default. */
  dataDir?: string;
  startTimeoutMs?: number;
}

type Flavor = 'mariadb' | 'mysql';

interface Binaries {
  server: string;
  flavor: Flavor;
  /** MariaDB's installer; MySQL initialises with `mysqld --initialize-insecure` instead. */
  installer: string | null;
}

/** Also where distributions and Homebrew put server binaries that are not on a normal user's PATH. */
const EXTRA_DIRS = [
  '/usr/sbin',
  '/usr/local/sbin',
  '/usr/local/bin',
  '/usr/local/mysql/bin',
  '/opt/homebrew/bin',
  '/opt/homebrew/sbin',
  '/opt/homebrew/opt/mariadb/bin',
  '/opt/homebrew/opt/mysql/bin',
  '/usr/local/opt/mariadb/bin',
  '/usr/local/opt/mysql/bin',
];

async function findExecutable(name: string): Promise<string | null> {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean), ...EXTRA_DIRS];
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    try {
      await fs.access(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

function run(file: string, args: string[], timeoutMs = 120_000): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 10 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`${path.basename(file)} ${args.join(' ')} failed: ${err.message}\n${tail(`${stdout}\n${stderr}`)}`));
      } else {
        resolve({ stdout, stderr });
      }
    });
  });
}

function tail(text: string, lines = 25): string {
  return text.trim().split('\n').slice(-lines).join('\n');
}

async function findBinaries(): Promise<Binaries | null> {
  const server = (await findExecutable('mariadbd')) ?? (await findExecutable('mysqld'));
  if (!server) return null;
  const { stdout } = await run(server, ['--version'], 15_000);
  const flavor: Flavor = /mariadb/i.test(stdout) ? 'mariadb' : 'mysql';
  const installer =
    flavor === 'mariadb' ? ((await findExecutable('mariadb-install-db')) ?? (await findExecutable('mysql_install_db'))) : null;
  if (flavor === 'mariadb' && !installer) return null;
  return { server, flavor, installer };
}

/** Errors that only a server speaking the MySQL protocol produces, i.e. something does answer. */
function isServerReply(err: unknown): boolean {
  const e = err as { sqlState?: string; code?: string };
  return typeof e?.sqlState === 'string' || /^ER_/.test(e?.code ?? '');
}

/** Nothing listens there, or nothing can be reached: the only failures that starting a server could fix. */
const NETWORK_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

async function answers(conn: mysql.ConnectionOptions): Promise<{ ok: boolean; error?: Error }> {
  let c: mysql.Connection | null = null;
  try {
    c = await mysql.createConnection({ connectTimeout: 2_000, ...conn });
    await c.query('SELECT 1');
    return { ok: true };
  } catch (err) {
    // With TLS, a server that answers may still fail the handshake (no TLS, a certificate not trusted):
    // that is for the real connection to report, not a reason to start another server.
    const answered = isServerReply(err) || (conn.ssl !== undefined && !NETWORK_ERRORS.has((err as { code?: string }).code ?? ''));
    return { ok: answered, error: err as Error };
  } finally {
    await c?.end().catch(() => undefined);
  }
}

/**
 * Returns null when the server named by the URL answers (including with an authentication error,
 * which starting a second server would not fix). Otherwise starts a private server for a local URL
 * and returns its handle; throws with installation advice when that is impossible.
 */
export async function ensureLocalMysql(url: string, log: Logger, opts: LocalMysqlOptions = {}): Promise<LocalMysqlHandle | null> {
  const target = parseMysqlUrl(url);
  const tls = mysqlTlsFromEnv();
  const probe = await answers({
    host: target.host,
    port: target.port,
    user: target.user,
    password: target.password,
    ...(tls ? { ssl: tls } : {}),
  });
  if (probe.ok) return null;

  const where = `${target.host}:${target.port}`;
  if (!LOCAL_HOSTS.has(target.host)) {
    throw new Error(`The MySQL server at ${where} (MYSQL_URL) does not answer: ${probe.error?.message ?? 'no reply'}`);
  }
  if (tls) {
    // The private server is plaintext; starting one would not give what MYSQL_SSL* asks for.
    throw new Error(
      `Nothing answers at ${where} (MYSQL_URL), and with MYSQL_SSL* set no private (plaintext) server is started: ${probe.error?.message ?? 'no reply'}`,
    );
  }

  const bins = await findBinaries();
  if (!bins) {
    throw new Error(
      `Nothing answers at ${where} (MYSQL_URL), and no MariaDB or MySQL server is installed to start a private one. ` +
        `Either install the server binaries (Debian/Ubuntu: sudo apt-get install mariadb-server; Fedora: sudo dnf install ` +
        `mariadb-server; macOS: brew install mariadb) — they need not be running, a private server is started with its data ` +
        `under .data/mysql — or point MYSQL_URL at a running server, e.g. mysql://user:password@db-host:3306/interaction_data.`,
    );
  }

  const dataDir = path.resolve(opts.dataDir ?? DEFAULT_LOCAL_MYSQL_DIR);
  const startTimeoutMs = opts.startTimeoutMs ?? 60_000;
  const lock = await acquireStartLock(dataDir, startTimeoutMs, () => answersAt(target));
  if (lock === 'started-elsewhere') {
    log.info({ port: target.port }, 'another process started the private database server; using it');
    return null;
  }
  try {
    await initialiseDataDir(bins, dataDir, log);
    return await startServer(bins, dataDir, target, startTimeoutMs, log, url);
  } finally {
    await lock.release();
  }
}

const answersAt = async (t: ReturnType<typeof parseMysqlUrl>) =>
  (await answers({ host: t.host, port: t.port, user: t.user, password: t.password })).ok;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Two servers on one data directory fight over its lock files for half a minute before one gives
 * up, so concurrent starters (worker and API launched together) take turns: the first starts the
 * server, the others wait for it to answer. A lock left by a dead process is taken over.
 */
async function acquireStartLock(
  dataDir: string,
  timeoutMs: number,
  serverAnswers: () => Promise<boolean>,
): Promise<{ release(): Promise<void> } | 'started-elsewhere'> {
  const lockPath = `${dataDir}.start.lock`;
  const token = `${process.pid} ${crypto.randomUUID()}`;
  await fs.mkdir(path.dirname(lockPath), { recursive: true });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await fs.writeFile(lockPath, token, { flag: 'wx' });
      return {
        release: async () => {
          const current = await fs.readFile(lockPath, 'utf8').catch(() => '');
          if (current === token) await fs.rm(lockPath, { force: true });
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = Number((await fs.readFile(lockPath, 'utf8').catch(() => '')).split(' ')[0]);
    if (!Number.isInteger(holder) || holder <= 0 || !processAlive(holder)) {
      await fs.rm(lockPath, { force: true });
      continue;
    }
    if (await serverAnswers()) return 'started-elsewhere';
    if (Date.now() > deadline) {
      throw new Error(`Timed out waiting for process ${holder} to start the private database server (lock ${lockPath}).`);
    }
    await sleep(250);
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.access(p);
    return true;
  } catch {
    return false;
  }
}

const runningAsRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

/** Both servers refuse to run as root unless told to; as any other user they run as that user. */
const userArgs = () => (runningAsRoot() ? ['--user=root'] : []);

async function initialiseDataDir(bins: Binaries, dataDir: string, log: Logger): Promise<void> {
  // The system schema is the marker of a finished initialisation.
  if (await exists(path.join(dataDir, 'mysql'))) return;
  if ((await exists(dataDir)) && (await fs.readdir(dataDir)).length > 0) {
    throw new Error(`${dataDir} exists but holds no initialised MySQL data; remove it to let it be created again.`);
  }

  log.info({ dataDir, server: bins.server }, 'initialising a private database server data directory');
  // Initialise next to the target and rename, so an interrupted run leaves no half-made directory
  // that the marker check above would mistake for a finished one.
  await fs.mkdir(path.dirname(dataDir), { recursive: true });
  const staging = await fs.mkdtemp(path.join(path.dirname(dataDir), `.${path.basename(dataDir)}-init-`));
  try {
    if (bins.flavor === 'mariadb') {
      await run(bins.installer as string, [
        '--no-defaults',
        `--datadir=${staging}`,
        ...userArgs(),
        // Password login for root instead of the unix_socket plugin, which client libraries cannot use.
        '--auth-root-authentication-method=normal',
        '--skip-test-db',
        '--skip-name-resolve',
      ]);
    } else {
      // mysqld --initialize wants a directory that does not exist yet.
      await fs.rmdir(staging);
      await run(bins.server, ['--no-defaults', '--initialize-insecure', `--datadir=${staging}`, ...userArgs()]);
    }
    await fs.rm(dataDir, { recursive: true, force: true });
    await fs.rename(staging, dataDir);
  } catch (err) {
    await fs.rm(staging, { recursive: true, force: true });
    throw err;
  }
}

/** Unix socket paths are limited to about 104 bytes; fall back to the temp dir for deep checkouts. */
function socketPathFor(dataDir: string): string {
  const inside = path.join(dataDir, 'mysqld.sock');
  if (Buffer.byteLength(inside) <= 100) return inside;
  const hash = crypto.createHash('sha1').update(dataDir).digest('hex').slice(0, 12);
  return path.join(os.tmpdir(), `interaction-data-mysql-${hash}.sock`);
}

async function startServer(
  bins: Binaries,
  dataDir: string,
  target: ReturnType<typeof parseMysqlUrl>,
  startTimeoutMs: number,
  log: Logger,
  url: string,
): Promise<LocalMysqlHandle> {
  const socketPath = socketPathFor(dataDir);
  const errorLog = path.join(dataDir, 'server.err');
  const host = target.host === 'localhost' ? '127.0.0.1' : target.host.replace(/^\[|\]$/g, '');
  const args = [
    // Ignore /etc/mysql and ~/.my.cnf: they may point at system paths this user cannot write.
    '--no-defaults',
    `--datadir=${dataDir}`,
    `--socket=${socketPath}`,
    `--port=${target.port}`,
    `--bind-address=${host}`,
    `--pid-file=${path.join(dataDir, 'mysqld.pid')}`,
    `--log-error=${errorLog}`,
    '--skip-name-resolve',
    '--character-set-server=utf8mb4',
    '--collation-server=utf8mb4_unicode_ci',
    ...userArgs(),
    // MySQL's X protocol listens on 33060 by default and would clash with a system MySQL.
    ...(bins.flavor === 'mysql' ? ['--mysqlx=OFF'] : []),
  ];

  log.info(
    { server: bins.server, port: target.port, dataDir },
    `starting a private ${bins.flavor === 'mariadb' ? 'MariaDB' : 'MySQL'} server`,
  );
  await fs.rm(socketPath, { force: true });
  const child: ChildProcess = spawn(bins.server, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (c: string) => {
    stderr = (stderr + c).slice(-20_000);
  });

  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  const exited = new Promise<void>((resolve) => {
    child.once('error', (err) => {
      stderr += `\n${err.message}`;
      if (child.pid === undefined) {
        exitInfo = { code: null, signal: null };
        resolve();
      }
    });
    child.once('close', (code, signal) => {
      exitInfo = { code, signal };
      resolve();
    });
  });

  // Leaving the server behind would hold the port and the data files for the next run.
  const onParentExit = () => {
    if (exitInfo === null) child.kill('SIGTERM');
  };
  process.once('exit', onParentExit);
  void exited.then(() => process.removeListener('exit', onParentExit));

  const stop = async (graceMs = 30_000): Promise<void> => {
    if (exitInfo !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (exitInfo === null) {
        log.warn({ pid: child.pid }, 'database server did not shut down in time; killing it');
        child.kill('SIGKILL');
      }
    }, graceMs);
    try {
      await exited;
    } finally {
      clearTimeout(timer);
    }
  };

  const failure = async (why: string): Promise<Error> => {
    const fileTail = await fs.readFile(errorLog, 'utf8').then(tail, () => '');
    const detail = tail(`${stderr}\n${fileTail}`);
    return new Error(
      `Private database server (${bins.server}, data in ${dataDir}) ${why}${detail ? `\n--- server log (tail) ---\n${detail}` : ''}`,
    );
  };

  const deadline = Date.now() + startTimeoutMs;
  try {
    // Root over the socket first: it works before any TCP user exists for the URL's credentials.
    for (;;) {
      if (exitInfo !== null) {
        const info = exitInfo as { code: number | null; signal: NodeJS.Signals | null };
        throw await failure(`exited during start-up (${info.signal ?? `exit code ${info.code}`})`);
      }
      if ((await answers({ socketPath, user: 'root', password: '' })).ok) break;
      if (Date.now() > deadline) throw await failure(`did not answer within ${startTimeoutMs} ms`);
      await sleep(250);
    }

    await grantUrlUser(socketPath, target, host);

    const tcp = await answers({ host: target.host, port: target.port, user: target.user, password: target.password });
    if (!tcp.ok || tcp.error) {
      throw await failure(`started, but ${url.replace(/:[^:@/]*@/, ':***@')} cannot log in: ${tcp.error?.message ?? 'no reply'}`);
    }
  } catch (err) {
    await stop(10_000);
    throw err;
  }

  log.info({ port: target.port, pid: child.pid, socketPath }, 'private database server ready');
  return { pid: child.pid as number, dataDir, socketPath, stop };
}

/** Lets the URL's user in over TCP with the URL's password, as a freshly initialised server only knows root over the socket. */
async function grantUrlUser(socketPath: string, target: ReturnType<typeof parseMysqlUrl>, bindHost: string): Promise<void> {
  const c = await mysql.createConnection({ socketPath, user: 'root', password: '' });
  try {
    const hosts = new Set(['127.0.0.1', '::1', bindHost]);
    for (const h of hosts) {
      await c.query('CREATE USER IF NOT EXISTS ?@? IDENTIFIED BY ?', [target.user, h, target.password]);
      await c.query('ALTER USER ?@? IDENTIFIED BY ?', [target.user, h, target.password]);
      await c.query('GRANT ALL PRIVILEGES ON *.* TO ?@? WITH GRANT OPTION', [target.user, h]);
    }
    await c.query('FLUSH PRIVILEGES');
  } finally {
    await c.end().catch(() => undefined);
  }
}
