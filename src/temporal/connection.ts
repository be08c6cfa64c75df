import { Client, Connection } from '@temporalio/client';
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
  const { address } = options;
  const deadline = Date.now() + (opts.waitMs ?? 0);
  let attempt = 0;
  for (;;) {
    attempt++;
    let connection: Connection | null = null;
    try {
      connection = await Connection.connect({ ...options, connectTimeout: 5_000 });
    } catch (err) {
      if (Date.now() < deadline) {
        if (attempt === 1) opts.log?.info({ address }, 'waiting for the Temporal server');
        await sleep(1_000);
        continue;
      }
      throw new Error(
        `Cannot reach the Temporal server at ${address} (TEMPORAL_ADDRESS) over ${describeTransport(options)}. Start one (npm start runs a local dev ` +
          `server; docker compose up runs the full stack) or point TEMPORAL_ADDRESS at it. Cause: ${(err as Error).message}`,
      );
    }

    try {
      await connection.workflowService.describeNamespace({ namespace });
    } catch (err) {
      await connection.close().catch(() => undefined);
      const code = (err as { code?: number }).code;
      // NOT_FOUND: the server answers but the namespace does not exist; retrying will not help.
      if (code !== 5 && Date.now() < deadline) {
        await sleep(1_000);
        continue;
      }
      throw new Error(
        code === 5
          ? `Temporal namespace "${namespace}" (TEMPORAL_NAMESPACE) does not exist on ${address} (TEMPORAL_ADDRESS). ` +
              `Create it with: temporal operator namespace create --namespace ${namespace}`
          : `Temporal server at ${address} (TEMPORAL_ADDRESS) did not answer for namespace "${namespace}": ${(err as Error).message}`,
      );
    }

    return { connection, client: new Client({ connection, namespace }) };
  }
}
