import { Client, Connection } from '@temporalio/client';
import type { Config } from '../config';
import type { Logger } from '../logger';

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

/** Connects to the configured Temporal server and checks that the namespace exists before returning. */
export async function connectTemporal(
  config: Pick<Config, 'temporalAddress' | 'temporalNamespace'>,
  opts: ConnectOptions = {},
): Promise<TemporalHandles> {
  const { temporalAddress: address, temporalNamespace: namespace } = config;
  const deadline = Date.now() + (opts.waitMs ?? 0);
  let attempt = 0;
  for (;;) {
    attempt++;
    let connection: Connection | null = null;
    try {
      connection = await Connection.connect({ address, connectTimeout: 5_000 });
    } catch (err) {
      if (Date.now() < deadline) {
        if (attempt === 1) opts.log?.info({ address }, 'waiting for the Temporal server');
        await sleep(1_000);
        continue;
      }
      throw new Error(
        `Cannot reach the Temporal server at ${address} (TEMPORAL_ADDRESS). Start one (npm start runs a local dev ` +
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
