import { Client, Connection } from '@temporalio/client';
import { backOff } from 'exponential-backoff';
import type { Config } from '../config';
import type { Logger } from '../logger';
import { describeTransport, temporalSettingsFromEnv, type TemporalTransport } from './envSettings';

export interface TemporalHandles {
  connection: Connection;
  client: Client;
}

export interface ConnectOptions {
  /**
   * Keep retrying for this long before giving up; useful when the server is starting alongside this
   * process. 0 (the default) fails fast so that a command-line user is not left waiting.
   */
  waitMs?: number;
  log?: Logger;
}

/** The configuration connectTemporal and temporalConnectionOptions take. */
export type TemporalConfig = Pick<Config, 'temporalAddress' | 'temporalNamespace'> & Partial<Pick<Config, 'temporalTransport'>>;

/** Options for Connection.connect (clients) and NativeConnection.connect (workers) alike. */
export interface TemporalConnectionOptions extends TemporalTransport {
  address: string;
}

/**
 * Every connection to the configured Temporal server (worker, API, CLI, `npm start`) takes its
 * options from here, so TLS and the API key apply to all of them. A caller that hands over only an
 * address and namespace (the CLI, which may override both) gets the transport from the environment.
 */
export function temporalConnectionOptions(config: TemporalConfig): TemporalConnectionOptions {
  const transport = config.temporalTransport ?? temporalSettingsFromEnv().transport;
  return { address: config.temporalAddress, ...transport };
}

/** Connects to the configured Temporal server and checks that the namespace exists before returning. */
export async function connectTemporal(config: TemporalConfig, opts: ConnectOptions = {}): Promise<TemporalHandles> {
  const { temporalNamespace: namespace } = config;
  const options = temporalConnectionOptions(config);
  const deadline = Date.now() + (opts.waitMs ?? 0);
  const connection = await backOff(() => connectOnce(options, namespace), {
    numOfAttempts: Infinity,
    startingDelay: 1_000,
    timeMultiple: 1,
    retry: (err, failures) => {
      // A missing namespace is not something waiting fixes.
      if (err instanceof NamespaceMissing || Date.now() >= deadline) return false;
      if (failures === 1) opts.log?.info({ address: options.address }, 'waiting for the Temporal server');
      return true;
    },
  });
  return { connection, client: new Client({ connection, namespace }) };
}

class NamespaceMissing extends Error {}

/* eslint-disable preserve-caught-error */
/**
 * One connection attempt, failing with what the user can do about it. The messages carry the cause's
 * text but not the cause itself: the CLI and the API would otherwise classify them by the gRPC code
 * underneath and answer with a vaguer message of their own.
 */
async function connectOnce(options: TemporalConnectionOptions, namespace: string): Promise<Connection> {
  const { address } = options;
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...options, connectTimeout: 5_000 });
  } catch (err) {
    throw new Error(
      `Cannot reach the Temporal server at ${address} (TEMPORAL_ADDRESS) over ${describeTransport(options)}. Start one (npm start runs a local dev ` +
        `server; docker compose up runs the full stack) or point TEMPORAL_ADDRESS at it. Cause: ${(err as Error).message}`,
    );
  }
  try {
    await connection.workflowService.describeNamespace({ namespace });
    return connection;
  } catch (err) {
    await connection.close().catch(() => undefined);
    // NOT_FOUND: the server answers but the namespace does not exist.
    if ((err as { code?: number }).code === 5) {
      throw new NamespaceMissing(
        `Temporal namespace "${namespace}" (TEMPORAL_NAMESPACE) does not exist on ${address} (TEMPORAL_ADDRESS). ` +
          `Create it with: temporal operator namespace create --namespace ${namespace}`,
      );
    }
    throw new Error(
      `Temporal server at ${address} (TEMPORAL_ADDRESS) did not answer for namespace "${namespace}": ${(err as Error).message}`,
    );
  }
}
/* eslint-enable preserve-caught-error */
