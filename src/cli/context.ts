/**
 * What every command gets: where to write, and a Temporal connection opened only once the command's
 * arguments have all been checked (bad input must not even need a reachable server).
 */
import type { Connection } from '@temporalio/client';
import type { Knex } from 'knex';
import { LifecycleClient } from '../client/lifecycleClient';
import { openDatabase } from '../db/knex';
import { loadConfig, type Config } from '../config';
import { connectTemporal, type TemporalHandles } from '../temporal/connection';
import type { Client } from '@temporalio/client';

export interface OutputStream {
  write(chunk: string): unknown;
  /** Progress bars are drawn only on a terminal. */
  isTTY?: boolean;
}

export interface CliIo {
  stdout: OutputStream;
  stderr: OutputStream;
  /** Environment to read TEMPORAL_ADDRESS etc. from; defaults to process.env. */
  env?: NodeJS.ProcessEnv;
}

export const EXIT_OK = 0;
/** The operation failed or was refused, or Temporal could not be reached. */
export const EXIT_FAILURE = 1;
/** The command line was wrong; nothing was sent. */
export const EXIT_USAGE = 2;

/** Bad input: reported with exit code 2 before anything is sent. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** The command ran and could not do what was asked: exit code 1. */
export class CommandFailedError extends Error {
  override name = 'CommandFailedError';
}

/** Upper bound for one call to Temporal; a status query waits for a worker, which may not be running. */
export const TEMPORAL_CALL_TIMEOUT_MS = 30_000;

export class CliContext {
  private temporal: Promise<TemporalHandles> | null = null;
  private database: Promise<Knex> | null = null;

  /** overrides is read when first connecting, i.e. after the command line has been parsed. */
  constructor(
    readonly io: CliIo,
    private readonly overrides: () => { address?: string; namespace?: string } = () => ({}),
  ) {}

  out(line = ''): void {
    this.io.stdout.write(`${line}\n`);
  }

  err(line = ''): void {
    this.io.stderr.write(`${line}\n`);
  }

  config(): Pick<Config, 'temporalAddress' | 'temporalNamespace'> {
    let config: Config;
    try {
      config = loadConfig(this.io.env ?? process.env);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const overrides = this.overrides();
    return {
      temporalAddress: overrides.address ?? config.temporalAddress,
      temporalNamespace: overrides.namespace ?? config.temporalNamespace,
    };
  }

  private connect(): Promise<TemporalHandles> {
    if (!this.temporal) {
      const config = this.config();
      this.temporal = connectTemporal(config).catch((err: unknown) => {
        throw new CommandFailedError((err as Error).message);
      });
    }
    return this.temporal;
  }

  async temporalClient(): Promise<Client> {
    return (await this.connect()).client;
  }

  async lifecycle(): Promise<LifecycleClient> {
    return new LifecycleClient((await this.connect()).client);
  }

  /** Runs fn with a deadline on every Temporal call it makes. */
  async withDeadline<T>(fn: () => Promise<T>, timeoutMs = TEMPORAL_CALL_TIMEOUT_MS): Promise<T> {
    const { connection } = await this.connect();
    return connection.withDeadline(Date.now() + timeoutMs, fn);
  }

  async connection(): Promise<Connection> {
    return (await this.connect()).connection;
  }

  /** The service's MySQL database (MYSQL_URL), for the commands that read or write it directly. */
  db(): Promise<Knex> {
    if (!this.database) {
      let url: string;
      try {
        url = loadConfig(this.io.env ?? process.env).mysqlUrl;
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
      this.database = openDatabase(url).catch((err: unknown) => {
        throw new CommandFailedError(`cannot open the database: ${(err as Error).message}`);
      });
    }
    return this.database;
  }

  async close(): Promise<void> {
    if (this.database) {
      const pending = this.database;
      this.database = null;
      await pending.then((db) => db.destroy()).catch(() => undefined);
    }
    if (!this.temporal) return;
    const pending = this.temporal;
    this.temporal = null;
    try {
      await (await pending).connection.close();
    } catch {
      // Connecting failed, so there is nothing to close.
    }
  }
}
