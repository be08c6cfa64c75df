/**
 * Runs Versity Gateway (see scripts/ensureVersity.ts) as a child process: an S3 server whose posix
 * backend keeps each bucket as a directory under `dataDir` and each object as a plain file in it, so
 * the archive has a real S3 endpoint on one machine, whose state survives a restart or a crash.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CreateBucketCommand, HeadBucketCommand, S3Client, S3ServiceException, type S3ClientConfig } from '@aws-sdk/client-s3';
import { backOff } from 'exponential-backoff';
import type { Logger } from '../logger';
import { assertPortFree, freePort } from '../temporal/devServer';

/** The gateway answers for one region; clients must sign for that one. */
export const EMBEDDED_GATEWAY_REGION = 'us-east-1';

export interface EmbeddedGatewayOptions {
  /** Absolute path of versitygw, see scripts/ensureVersity.ts. */
  binary: string;
  /** Top directory of the posix backend: `<dataDir>/<bucket>/<key>` holds each object's bytes. */
  dataDir: string;
  /** 0 or undefined: a free port chosen here. */
  port?: number;
  /** Interface to bind; loopback keeps a server with fixed credentials off the network. */
  host?: string;
  /** The gateway's root account, the only one it has. */
  accessKey: string;
  secretKey: string;
  /** Created when missing. S3 rules apply: 3 to 63 lower-case letters, digits, dots and hyphens. */
  bucket: string;
  /** Receives the gateway's own output at debug level, and lifecycle events. */
  log?: Logger;
  /** How long to wait for the gateway to answer before giving up (default 30 s). */
  startTimeoutMs?: number;
  /** Also log a line per request (at debug level); off by default, as it costs a line per archive write. */
  accessLog?: boolean;
}

export interface EmbeddedGateway {
  /** http://host:port, for S3_ENDPOINT. */
  readonly endpoint: string;
  readonly host: string;
  readonly port: number;
  readonly region: string;
  readonly bucket: string;
  readonly accessKey: string;
  readonly secretKey: string;
  readonly dataDir: string;
  /** Of the current process; a restart changes it. */
  readonly pid: number;
  /** Where the posix backend keeps the bytes of `key`, to inspect or damage them behind the gateway's back. */
  objectPath(key: string): string;
  /** Graceful shutdown: SIGTERM, then SIGKILL if the gateway has not exited after the grace period. */
  stop(graceMs?: number): Promise<void>;
  /** Simulates a crash: SIGKILL; resolves once the process is gone. */
  kill(): Promise<void>;
  /** Starts it again on the same directory and port (stopping it first if it still runs); resolves when it answers. */
  restart(): Promise<void>;
  /** Last lines the gateway wrote, for error messages. */
  outputTail(lines?: number): string;
}

/** The variables the service reads to use this gateway as its archive store. */
export function embeddedGatewayEnv(gw: EmbeddedGateway): Record<string, string> {
  return {
    ARCHIVE_STORE: 's3',
    S3_ENDPOINT: gw.endpoint,
    S3_REGION: gw.region,
    S3_BUCKET: gw.bucket,
    S3_FORCE_PATH_STYLE: 'true',
    // The service takes credentials from the AWS SDK's default chain, whose first link is these.
    AWS_ACCESS_KEY_ID: gw.accessKey,
    AWS_SECRET_ACCESS_KEY: gw.secretKey,
  };
}

/** An S3 client configuration for this gateway, for tests and tools that talk to it directly. */
export function embeddedGatewayClientConfig(gw: EmbeddedGateway): S3ClientConfig {
  return {
    endpoint: gw.endpoint,
    region: gw.region,
    // Virtual-host addressing would need <bucket>.127.0.0.1 to resolve.
    forcePathStyle: true,
    credentials: { accessKeyId: gw.accessKey, secretAccessKey: gw.secretKey },
  };
}

type ExitInfo = { code: number | null; signal: NodeJS.Signals | null };

/** The last lines of the gateway's output, kept bounded. */
class OutputTail {
  private lines: string[] = [];
  private partial = '';
  constructor(private readonly max = 200) {}

  push(chunk: string, onLine: (line: string) => void): void {
    const parts = (this.partial + chunk).split('\n');
    this.partial = parts.pop() ?? '';
    for (const line of parts) {
      if (!line.trim()) continue;
      this.lines.push(line);
      onLine(line);
    }
    if (this.lines.length > this.max) this.lines.splice(0, this.lines.length - this.max);
  }

  tail(n: number): string {
    const all = this.partial.trim() ? [...this.lines, this.partial] : this.lines;
    return all.slice(-n).join('\n');
  }
}

class StartupError extends Error {}

/** One run of the binary, from spawn to exit. */
class GatewayProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<ExitInfo>;
  exitInfo: ExitInfo | null = null;
  spawnError: Error | null = null;
  /** Set once stop() or kill() asked for the exit, so that an exit without it can be reported. */
  stopping = false;

  constructor(binary: string, args: string[], env: NodeJS.ProcessEnv, output: OutputTail, log: Logger | undefined) {
    this.child = spawn(binary, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const forward = (line: string) => log?.debug({ versitygw: line }, 'embedded S3 gateway');
    this.child.stdout?.setEncoding('utf8').on('data', (c: string) => output.push(c, forward));
    this.child.stderr?.setEncoding('utf8').on('data', (c: string) => output.push(c, forward));
    this.exited = new Promise<ExitInfo>((resolve) => {
      this.child.once('error', (err) => {
        this.spawnError = err;
        // 'close' does not follow a failed spawn.
        if (this.child.pid === undefined) {
          this.exitInfo = { code: null, signal: null };
          resolve(this.exitInfo);
        }
      });
      this.child.once('close', (code, signal) => {
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      });
    });
    // A gateway left behind would keep the port busy for the next run; SIGTERM lets it shut down cleanly.
    const onParentExit = () => {
      if (this.exitInfo === null) this.child.kill('SIGTERM');
    };
    process.once('exit', onParentExit);
    void this.exited.then(() => process.removeListener('exit', onParentExit));
  }

  async stop(graceMs: number | null, log: Logger | undefined): Promise<void> {
    if (this.exitInfo !== null) return;
    this.stopping = true;
    if (graceMs === null) {
      this.child.kill('SIGKILL');
      await this.exited;
      return;
    }
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (this.exitInfo === null) {
        log?.warn({ pid: this.child.pid, graceMs }, 'embedded S3 gateway ignored SIGTERM; killing it');
        this.child.kill('SIGKILL');
      }
    }, graceMs);
    try {
      await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Errors that mean "not listening yet" rather than "something is wrong". */
function isConnectionError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const name = (err as Error | undefined)?.name;
  return ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT'].includes(code ?? '') || name === 'TimeoutError';
}

class Gateway implements EmbeddedGateway {
  readonly endpoint: string;
  readonly region = EMBEDDED_GATEWAY_REGION;
  private readonly output = new OutputTail();
  private proc: GatewayProcess | null = null;

  constructor(
    private readonly opts: EmbeddedGatewayOptions & { host: string; dataDir: string },
    readonly port: number,
  ) {
    this.endpoint = `http://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${port}`;
  }

  get host(): string {
    return this.opts.host;
  }
  get bucket(): string {
    return this.opts.bucket;
  }
  get accessKey(): string {
    return this.opts.accessKey;
  }
  get secretKey(): string {
    return this.opts.secretKey;
  }
  get dataDir(): string {
    return this.opts.dataDir;
  }
  get pid(): number {
    return this.proc?.child.pid ?? -1;
  }

  objectPath(key: string): string {
    return path.join(this.opts.dataDir, this.opts.bucket, ...key.split('/'));
  }

  outputTail(lines = 40): string {
    return this.output.tail(lines);
  }

  private args(): string[] {
    const args = ['--port', `${this.endpoint.slice('http://'.length)}`, '--region', this.region];
    if (!this.opts.accessLog) args.push('--quiet');
    // Global flags go before the backend's name, the backend's own arguments after it.
    return [...args, 'posix', this.opts.dataDir];
  }

  /**
   * Only what the gateway needs: its many VGW_* variables, inherited, could switch on an IAM service,
   * TLS or read-only mode behind the caller's back. The root credentials go here rather than on the
   * command line, which every user of the machine can read.
   */
  private env(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ROOT_ACCESS_KEY_ID: this.opts.accessKey, ROOT_SECRET_ACCESS_KEY: this.opts.secretKey };
    for (const name of ['PATH', 'HOME', 'TMPDIR', 'TZ']) if (process.env[name] !== undefined) env[name] = process.env[name];
    return env;
  }

  private describeFailure(why: string): Error {
    const tail = this.output.tail(40);
    return new StartupError(
      `Embedded S3 gateway (${this.opts.binary} ${this.args().join(' ')}) ${why}` +
        (tail ? `\n--- gateway output (tail) ---\n${tail}` : ''),
    );
  }

  async start(): Promise<void> {
    await assertPortFree(this.opts.host, this.port, 'the embedded S3 gateway');
    const proc = new GatewayProcess(this.opts.binary, this.args(), this.env(), this.output, this.opts.log);
    this.proc = proc;
    const timeoutMs = this.opts.startTimeoutMs ?? 30_000;
    const abort = new AbortController();
    const died = proc.exited.then((info) => {
      throw proc.spawnError && proc.child.pid === undefined
        ? this.describeFailure(`could not be started: ${proc.spawnError.message}`)
        : this.describeFailure(`exited during start-up (${info.signal ?? `exit code ${info.code}`})`);
    });
    const timedOut = sleep(timeoutMs, undefined, { signal: abort.signal }).then(() => {
      throw this.describeFailure(`did not answer on ${this.endpoint} within ${timeoutMs} ms`);
    });
    // Nothing to wait for in the output: --quiet also silences the banner that says it listens. The port
    // was free a moment ago, and a server that takes these credentials is this one.
    const ready = this.ensureBucket(abort.signal);
    try {
      await Promise.race([ready, died, timedOut]);
    } catch (err) {
      abort.abort();
      await proc.stop(2_000, this.opts.log);
      throw err;
    } finally {
      abort.abort();
      // The losers of the race settle later; nobody awaits them.
      for (const p of [ready, died, timedOut]) p.catch(() => undefined);
    }
    this.opts.log?.info(
      { endpoint: this.endpoint, bucket: this.bucket, dataDir: this.dataDir, pid: this.pid },
      'embedded S3 gateway ready',
    );
    void proc.exited.then((info) => {
      if (!proc.stopping) {
        this.opts.log?.error({ ...info, pid: proc.child.pid, output: this.output.tail(20) }, 'embedded S3 gateway exited on its own');
      }
    });
  }

  /** Answers through the S3 API with these credentials, and makes the bucket if it is not there. */
  private async ensureBucket(signal: AbortSignal): Promise<void> {
    const client = new S3Client({
      ...embeddedGatewayClientConfig(this),
      maxAttempts: 1,
      requestHandler: { connectionTimeout: 1_000, requestTimeout: 5_000 },
    });
    try {
      await backOff(
        async () => {
          try {
            await client.send(new HeadBucketCommand({ Bucket: this.bucket }), { abortSignal: signal });
          } catch (err) {
            if (!(err instanceof S3ServiceException && err.$metadata.httpStatusCode === 404)) throw err;
            try {
              await client.send(new CreateBucketCommand({ Bucket: this.bucket }), { abortSignal: signal });
              this.opts.log?.info({ bucket: this.bucket, dataDir: this.dataDir }, 'embedded S3 gateway: bucket created');
            } catch (createErr) {
              // Another client made it in between: what was wanted.
              if (!(createErr instanceof S3ServiceException && createErr.name === 'BucketAlreadyOwnedByYou')) throw createErr;
            }
          }
        },
        {
          startingDelay: 25,
          maxDelay: 500,
          numOfAttempts: Number.MAX_SAFE_INTEGER,
          retry: (err) => !signal.aborted && isConnectionError(err),
        },
      );
    } catch (err) {
      if (signal.aborted) return;
      // A refusal (wrong credentials, invalid bucket name) will not go away by waiting.
      throw this.describeFailure(`refused the start-up check: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
    } finally {
      client.destroy();
    }
  }

  stop(graceMs = 10_000): Promise<void> {
    return this.proc?.stop(graceMs, this.opts.log) ?? Promise.resolve();
  }

  kill(): Promise<void> {
    return this.proc?.stop(null, this.opts.log) ?? Promise.resolve();
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }
}

export async function startEmbeddedGateway(opts: EmbeddedGatewayOptions): Promise<EmbeddedGateway> {
  const host = opts.host ?? '127.0.0.1';
  const dataDir = path.resolve(opts.dataDir);
  await fs.mkdir(dataDir, { recursive: true });
  if (opts.port) {
    const gw = new Gateway({ ...opts, host, dataDir }, opts.port);
    await gw.start();
    return gw;
  }
  // A port from freePort() is ephemeral, which an outgoing connection may be handed before the gateway
  // binds it: take another one then.
  for (let attempt = 1; ; attempt++) {
    const gw = new Gateway({ ...opts, host, dataDir }, await freePort(host));
    try {
      await gw.start();
      return gw;
    } catch (err) {
      if (attempt >= 3 || !/address already in use|is already in use/.test((err as Error).message)) throw err;
      opts.log?.warn({ port: gw.port, attempt }, 'embedded S3 gateway port taken before the gateway bound it; trying another');
    }
  }
}
