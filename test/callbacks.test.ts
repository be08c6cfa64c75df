/**
 * Restore callbacks against the real stack: a signed POST to the requester's URL when a restore
 * completes (retried until the receiver answers 2xx) and when a bulk restore is done; a URL outside the
 * allowed hosts is refused before anything is sent.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { ApiServer } from '../src/api/app';
import { verifyCallbackSignature } from '../src/callbacks/signature';
import type { MessageRef } from '../src/shared/types';
import { freePort } from '../src/temporal/devServer';
import { stackApi } from './support/api';
import { bearer, testAuth, type TestAuth } from './support/auth';
import { createStack, seedInteractions, waitFor, waitForState, type TestStack } from './support/stack';

const SECRET = 'test-callback-secret-0123456789abcdef';

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
  answered: number;
}

describe('restore callbacks', () => {
  let stack: TestStack;
  let app: ApiServer;
  let auth: TestAuth;
  let receiver: http.Server;
  let base: string;
  const received: Received[] = [];
  /** Deliveries answered 500 the first time they come, to show they are retried. */
  const failFirst = new Set<string>();

  before(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    receiver = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const delivery = String(req.headers['interaction-data-delivery']);
        const answered = failFirst.delete(delivery) ? 500 : 200;
        received.push({ headers: req.headers, body, answered });
        res.writeHead(answered).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(port, '127.0.0.1', resolve));
    stack = await createStack({
      ttl: '2 seconds',
      cleanupInterval: '1 hour',
      env: { CALLBACK_SIGNING_SECRET: SECRET, CALLBACK_ALLOWED_HOSTS: '127.0.0.1', CALLBACK_ALLOW_HTTP: 'true' },
    });
    await stack.startWorker();
    auth = await testAuth(stack.db);
    app = await stackApi(stack, auth);
  });
  after(async () => {
    await app?.close();
    await stack?.close();
    receiver?.close();
  });

  const delivered = (event: string, requestId: string) =>
    waitFor(`the ${event} callback of ${requestId}`, () => {
      const hit = received.find((r) => r.answered === 200 && r.headers['interaction-data-event'] === event && r.body.includes(requestId));
      return Promise.resolve(hit ?? null);
    });

  async function expire(ref: MessageRef, rows: number): Promise<void> {
    await stack.db('messages').insert({ kind: ref.kind, id: ref.id, name: ref.id });
    await seedInteractions(stack.db, ref, rows);
    await stack.lifecycle.stop(ref.kind, ref.id);
    await waitForState(stack, ref, 'expired', 30_000);
  }

  it('calls a restore back when it completes, signed, and again until the receiver takes it', async () => {
    const ref: MessageRef = { kind: 'campaign', id: 'called-back' };
    await expire(ref, 40);
    const requestId = 'cb-restore-1';
    failFirst.add(`${requestId}/campaign:called-back/restore.completed`);
    const res = await app.inject({
      method: 'POST',
      url: `/v1/messages/campaign/called-back/restore`,
      headers: bearer(await auth.token(['restore'], 'ops@example.com')),
      payload: { requestId, callbackUrl: `${base}/hooks/restores` },
    });
    assert.equal(res.statusCode, 202, res.body);
    const hit = await delivered('restore.completed', requestId);
    const attempts = received.filter((r) => r.headers['interaction-data-delivery'] === hit.headers['interaction-data-delivery']);
    assert.deepEqual(
      attempts.map((a) => a.answered),
      [500, 200],
      'the refused attempt was retried',
    );
    assert.equal(verifyCallbackSignature(SECRET, String(hit.headers['interaction-data-signature']), hit.body), true);
    assert.equal(
      verifyCallbackSignature('another-secret-0123456789abcdef0123', String(hit.headers['interaction-data-signature']), hit.body),
      false,
    );
    const body = JSON.parse(hit.body) as Record<string, unknown>;
    assert.deepEqual(
      { event: body.event, requestId: body.requestId, kind: body.kind, id: body.id, outcome: body.outcome, rowCount: body.rowCount },
      { event: 'restore.completed', requestId, kind: 'campaign', id: 'called-back', outcome: 'restored', rowCount: 40 },
    );
    assert.equal(body.deliveryId, `${requestId}/campaign:called-back/restore.completed`);
  });

  it('refuses a callback URL outside the allowed hosts, and changes nothing', async () => {
    const ref: MessageRef = { kind: 'canvas', id: 'not-called' };
    await expire(ref, 5);
    const res = await app.inject({
      method: 'POST',
      url: `/v1/messages/canvas/not-called/restore`,
      headers: bearer(await auth.token(['restore'], 'ops@example.com')),
      payload: { callbackUrl: 'https://169.254.169.254/latest/meta-data' },
    });
    assert.equal(res.statusCode, 400, res.body);
    assert.match(res.body, /not in CALLBACK_ALLOWED_HOSTS/);
    const status = await stack.lifecycle.status(ref.kind, ref.id);
    assert.deepEqual(status?.pendingRestores, []);
    assert.equal(status?.state, 'expired');
  });

  it('calls a bulk restore back once it is done, with its counts', async () => {
    const refs: MessageRef[] = [
      { kind: 'campaign', id: 'bulk-cb-1' },
      { kind: 'campaign', id: 'bulk-cb-2' },
    ];
    for (const ref of refs) await expire(ref, 10);
    const res = await app.inject({
      method: 'POST',
      url: '/v1/restores',
      headers: bearer(await auth.token(['restore'], 'ops@example.com')),
      payload: { ids: refs.map((r) => `${r.kind}:${r.id}`), requestId: 'cb-bulk-1', callbackUrl: `${base}/hooks/bulk` },
    });
    assert.equal(res.statusCode, 202, res.body);
    const hit = await delivered('bulk_restore.completed', 'cb-bulk-1');
    assert.equal(verifyCallbackSignature(SECRET, String(hit.headers['interaction-data-signature']), hit.body), true);
    const body = JSON.parse(hit.body) as Record<string, unknown>;
    assert.deepEqual(
      { requestId: body.requestId, total: body.total, restored: body.restored, failed: body.failed, rowsRestored: body.rowsRestored },
      { requestId: 'cb-bulk-1', total: 2, restored: 2, failed: 0, rowsRestored: 20 },
    );
  });
});
