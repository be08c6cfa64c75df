/** The HTTP API over a test stack's MySQL and Temporal, with the given authenticator, ready for `inject`. */
import pino from 'pino';
import { buildApi, type ApiServer } from '../../src/api/app';
import { LifecycleClient } from '../../src/client/lifecycleClient';
import { BulkRestoreClient } from '../../src/client/bulkRestoreClient';
import type { TestAuth } from './auth';
import type { TestStack } from './stack';

export async function stackApi(stack: TestStack, auth: TestAuth): Promise<ApiServer> {
  const app = buildApi({
    auth: auth.auth,
    db: stack.db,
    lifecycle: new LifecycleClient(stack.client),
    bulk: new BulkRestoreClient(stack.client),
    connection: stack.connection,
    temporalTimeoutMs: 30_000,
    callbacks: stack.config.callbacks,
    logger: pino({ level: 'silent' }),
  });
  await app.ready();
  return app;
}
