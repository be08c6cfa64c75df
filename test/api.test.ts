/**
 * The HTTP API against a real Temporal server and a worker: bad input is refused with a 400 that names
 * the field and starts no workflow; good input reaches the right actor, which answers. Every request
 * carries a token with just the scope its route needs (src/auth/routeScopes.ts), admin only where the
 * request needs admin.
 *
 *   npx tsx scripts/test.ts test/api.test.ts
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import type { Static } from '@fastify/type-provider-typebox';
import pino from 'pino';
import { buildApi, type ApiServer, type LifecycleApi } from '../src/api/app';
import type { ErrorBody, Health, RestoreResult } from '../src/api/schemas';
import { LifecycleClient, ResumeRefusedError, type ActorSummary } from '../src/client/lifecycleClient';
import { freePort } from '../src/temporal/devServer';
import { RESUME_REFUSED_MESSAGE, type LifecycleStatus } from '../src/shared/types';
import { asCaller, bearer, testAuth, type TestAuth } from './support/auth';
import { createStack, waitFor, type TestStack } from './support/stack';

const silent = pino({ level: 'silent' });

interface TemporalForTest {
  connection: Connection;
  client: Client;
}

async function assertNotStarted(client: Client, workflowId: string): Promise<void> {
  await assert.rejects(client.workflow.getHandle(workflowId).describe(), WorkflowNotFoundError, `${workflowId} must not have been started`);
}

const uid = (prefix: string) => `${prefix}-${randomBytes(3).toString('hex')}`;

describe('HTTP API on a real Temporal server', () => {
  let stack: TestStack;
  let temporal: TemporalForTest;
  let app: ApiServer;
  let auth: TestAuth;
  /** Tokens by the scope their routes need; restore's e-mail is restore@example.com. */
  let messagesToken: string;
  let restoreToken: string;
  /** Workflows the happy paths started; nothing else may exist in the namespace. */
  const started = new Set<string>();

  before(async () => {
    // The actors answer stop, resume and restore themselves: a worker runs in this file's namespace.
    stack = await createStack();
    await stack.startWorker();
    temporal = { connection: stack.connection, client: stack.client };
    auth = await testAuth(stack.db);
    messagesToken = await auth.token(['messages']);
    restoreToken = await auth.token(['restore']);
    // Restores below name ops@example.com, which is not the restore token's own address.
    app = buildApi({
      auth: auth.auth,
      allowedEmailDomains: ['example.com'],
      lifecycle: new LifecycleClient(temporal.client),
      connection: temporal.connection,
      logger: silent,
      // Generous: other test files run beside this one (see test/dataplane/helpers.ts).
      temporalTimeoutMs: 30_000,
    });
    await app.ready();
  });

  after(async () => {
    await app?.close();
    await stack?.close();
  });

  /** The token a route needs: restore for a restore, messages for the rest. */
  const tokenFor = (url: string) => (/\/restore(\?|$)/.test(url) ? restoreToken : messagesToken);

  async function post(url: string, payload?: unknown, token: string = tokenFor(url)) {
    const res = await app.inject({
      method: 'POST',
      url,
      headers: bearer(token),
      ...(payload === undefined
        ? {}
        : typeof payload === 'string'
          ? { payload, headers: { ...bearer(token), 'content-type': 'application/json' } }
          : { payload: payload as object }),
    });
    return { status: res.statusCode, body: res.json<Record<string, unknown>>() };
  }

  /** With `token` null, no Authorization header. */
  async function get(url: string, token: string | null = messagesToken) {
    const res = await app.inject({ method: 'GET', url, ...(token === null ? {} : { headers: bearer(token) }) });
    return { status: res.statusCode, body: res.json<Record<string, unknown>>() };
  }

  function assertBadRequest(res: { status: number; body: Record<string, unknown> }, mentions: RegExp) {
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.equal(res.body.error, 'bad_request');
    assert.match(String(res.body.message), mentions);
  }

  // Every kind of bad input is checked in-process, without a server (test/unit/apiValidation.test.ts);
  // here a sample of them meets the real stack, which must start nothing.
  it('refuses bad input with 400 and starts nothing', async () => {
    const id = uid('bad');
    const refused: [string, unknown, RegExp][] = [
      ['/v1/messages/email/abc/stop', {}, /^kind must be one of campaign, canvas/],
      [`/v1/messages/campaign/-${id}/stop`, {}, /^id must be 1-64 characters/],
      [`/v1/messages/canvas/${id}/restore`, { requestedBy: 'someone@elsewhere.org' }, /is not allowed/],
      [`/v1/messages/campaign/${id}/stop`, { stopedAt: '2026-01-01T00:00:00Z' }, /unknown body property "stopedAt"/],
      [`/v1/messages/campaign/${id}/stop`, '{"stoppedAt": ', /^body is not valid JSON$/],
      // Shaped like an instant but not a date: caught by the lifecycle client's own check, still before any signal.
      [`/v1/messages/campaign/${id}/stop`, { stoppedAt: '2026-13-45T12:00:00Z' }, /stoppedAt must be an ISO-8601 instant/],
    ];
    for (const [url, payload, mentions] of refused) assertBadRequest(await post(url, payload), mentions);
    for (const w of [
      'interaction-data:email:abc',
      `interaction-data:campaign:-${id}`,
      `interaction-data:canvas:${id}`,
      `interaction-data:campaign:${id}`,
    ])
      await assertNotStarted(temporal.client, w);
    // 64 characters is the limit, not over it.
    const longest = 'z'.repeat(64);
    assert.equal((await post(`/v1/messages/campaign/${longest}/stop`, {})).status, 200);
    started.add(`interaction-data:campaign:${longest}`);
  });

  describe('requests with start, answered by the actor', () => {
    async function assertRunning(workflowId: string) {
      const d = await temporal.client.workflow.getHandle(workflowId).describe();
      assert.equal(d.status.name, 'RUNNING');
      assert.equal(d.workflowId, workflowId);
      assert.equal(d.taskQueue, 'interaction-data');
      assert.equal(d.type, 'interactionDataLifecycle');
      started.add(workflowId);
    }

    it("POST stop → 200 with the actor's answer, and the actor exists", async () => {
      const id = uid('stop');
      const res = await post(`/v1/messages/campaign/${id}/stop`);
      assert.equal(res.status, 200);
      assert.equal(res.body.workflowId, `interaction-data:campaign:${id}`);
      assert.equal(res.body.changed, true);
      assert.equal(res.body.state, 'stopped');
      assert.equal(typeof res.body.expiresAt, 'string');
      await assertRunning(`interaction-data:campaign:${id}`);
      const again = await post(`/v1/messages/campaign/${id}/stop`);
      assert.equal(again.body.changed, false, 'a second stop changes nothing');

      const id2 = uid('stop-at');
      const res2 = await post(`/v1/messages/canvas/${id2}/stop`, { stoppedAt: '2126-01-31T12:00:00+02:00' });
      assert.equal(res2.status, 200);
      assert.equal(res2.body.stoppedAt, '2126-01-31T10:00:00.000Z');
      await assertRunning(`interaction-data:canvas:${id2}`);
    });

    it("POST resume → 200 with the actor's answer", async () => {
      const id = uid('resume');
      const res = await post(`/v1/messages/campaign/${id}/resume`, {});
      assert.equal(res.status, 200);
      assert.equal(res.body.workflowId, `interaction-data:campaign:${id}`);
      assert.equal(res.body.state, 'active');
      assert.equal(res.body.changed, false, 'a new actor is active already');
      await assertRunning(`interaction-data:campaign:${id}`);
    });

    it('POST restore → 202 with the request id; 409 resume of the expired message; 404 for an id no one knows', async () => {
      const id = uid('restore');
      // Stopped long ago: it expires at once. Backdating a stop that far needs admin.
      const backdated = await post(`/v1/messages/campaign/${id}/stop`, { stoppedAt: '2020-01-01T00:00:00Z' });
      assert.equal(backdated.status, 403, JSON.stringify(backdated.body));
      assert.equal(backdated.body.error, 'forbidden');
      await assertNotStarted(temporal.client, `interaction-data:campaign:${id}`);
      assert.equal((await post(`/v1/messages/campaign/${id}/stop`, { stoppedAt: '2020-01-01T00:00:00Z' }, auth.adminToken)).status, 200);
      await assertRunning(`interaction-data:campaign:${id}`);
      await waitFor('the message to expire', async () => (await get(`/v1/messages/campaign/${id}`)).body.state === 'expired');
      const refused = await post(`/v1/messages/campaign/${id}/resume`, {});
      assert.equal(refused.status, 409);
      assert.equal(refused.body.message, RESUME_REFUSED_MESSAGE.campaign);
      const res = await post(`/v1/messages/campaign/${id}/restore`, { requestedBy: 'ops@example.com', requestId: 'ticket-4711' });
      assert.equal(res.status, 202);
      assert.equal(res.body.requestId, 'ticket-4711');
      assert.equal(res.body.accepted, true);

      const unknown = uid('unknown');
      const res2 = await post(`/v1/messages/canvas/${unknown}/restore`, { requestedBy: 'ops@example.com' });
      assert.equal(res2.status, 404);
      assert.match(String(res2.body.message), /never defined, stopped or sent events for/);
      const d = await temporal.client.workflow.getHandle(`interaction-data:canvas:${unknown}`).describe();
      assert.notEqual(d.status.name, 'RUNNING', 'no actor is left running for it');
    });

    it('GET status of a message never signalled → 404', async () => {
      const id = uid('never');
      const res = await get(`/v1/messages/canvas/${id}`);
      assert.equal(res.status, 404);
      assert.equal(res.body.error, 'not_found');
      assert.match(String(res.body.message), /has no interaction-data lifecycle yet/);
      await assertNotStarted(temporal.client, `interaction-data:canvas:${id}`);
    });

    it('GET list finds the actors, and nothing was started by the rejected requests', async () => {
      // Visibility is eventually consistent: wait until everything started shows up.
      let ids: string[] = [];
      for (let i = 0; i < 50; i++) {
        const res = await get('/v1/messages?limit=1000');
        assert.equal(res.status, 200);
        ids = (res.body.items as ActorSummary[]).map((a) => a.workflowId);
        if ([...started].every((w) => ids.includes(w))) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.deepEqual(new Set(ids), started);

      const campaigns = await get('/v1/messages?kind=campaign&limit=2');
      assert.equal(campaigns.status, 200);
      assert.equal(campaigns.body.count, 2);
      assert.equal(campaigns.body.truncated, true);
      for (const item of campaigns.body.items as ActorSummary[]) assert.equal(item.kind, 'campaign');
    });
  });

  it('GET /healthz → 200 when Temporal answers, without a token', async () => {
    const res = await get('/healthz', null);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { ok: true, temporal: true });
  });

  it('GET /openapi.json describes the routes (to any valid token)', async () => {
    assert.equal((await get('/openapi.json', null)).status, 401);
    const res = await get('/openapi.json', await auth.token(['ingest']));
    assert.equal(res.status, 200);
    const paths = res.body.paths as Record<string, Record<string, unknown>>;
    assert.ok(paths['/v1/messages/{kind}/{id}/restore'].post);
    assert.ok(paths['/v1/messages/{kind}/{id}'].get);
    assert.ok(paths['/v1/messages'].get);
  });

  describe('answers that need a worker, with a stand-in lifecycle client', () => {
    const status: LifecycleStatus = {
      kind: 'canvas',
      id: 'welcome',
      name: 'Welcome flow',
      tags: ['onboarding'],
      state: 'expired',
      available: false,
      expiresAt: null,
      stoppedAt: '2026-01-01T00:00:00.000Z',
      activeReferences: 0,
      referencingAudiences: [],
      lastCheckedAt: '2026-04-01T00:00:00.000Z',
      archive: { kind: 'canvas', id: 'welcome', generation: 1, rowCount: 10, chunkCount: 1, compressedBytes: 99, checksum: 'abc' },
      pendingRestores: [],
      lastRestore: null,
      lastRefusal: null,
      problem: null,
      archivingHeld: null,
      revision: 7,
    };
    const unused = () => Promise.reject(new Error('not expected in this test'));
    const stub = (over: Partial<LifecycleApi>): LifecycleApi => ({
      stop: unused,
      resume: unused,
      restore: unused,
      retry: unused,
      status: unused,
      list: () => {
        throw new Error('not expected in this test');
      },
      ...over,
    });
    const build = (over: Partial<LifecycleApi>) =>
      buildApi({
        auth: auth.auth,
        allowedEmailDomains: ['example.com'],
        lifecycle: stub(over),
        connection: temporal.connection,
        logger: silent,
        openapi: false,
      });

    it('GET status → 200 with every field, including ones added later', async () => {
      const api = build({ status: () => Promise.resolve({ ...status, futureField: 'kept' } as LifecycleStatus) });
      const res = await asCaller(api, messagesToken).inject({ method: 'GET', url: '/v1/messages/canvas/welcome' });
      assert.equal(res.statusCode, 200);
      assert.deepEqual(res.json(), { ...status, futureField: 'kept' });
      await api.close();
    });

    it('POST resume of expired data → 409 with the words users know', async () => {
      const api = build({ resume: () => Promise.reject(new ResumeRefusedError(RESUME_REFUSED_MESSAGE.canvas)) });
      const res = await asCaller(api, messagesToken).inject({ method: 'POST', url: '/v1/messages/canvas/welcome/resume' });
      assert.equal(res.statusCode, 409);
      assert.deepEqual(res.json(), {
        error: 'resume_refused',
        message: 'Resume is only available for stopped Canvases with available interaction data',
      });
      await api.close();
    });

    it('POST restore of available data → 200 accepted:false; the requester is the one named, else the caller', async () => {
      const requesters: string[] = [];
      const api = build({
        restore: (_k, _i, req) => {
          requesters.push(req.requestedBy);
          return Promise.resolve({ requestId: req.requestId ?? 'generated', accepted: false, state: 'stopped' });
        },
        status: () => Promise.resolve({ ...status, state: 'stopped', available: true }),
      });
      const caller = asCaller(api, restoreToken);
      const res = await caller.inject({
        method: 'POST',
        url: '/v1/messages/canvas/welcome/restore',
        payload: { requestedBy: 'ops@example.com', requestId: 'r-1' },
      });
      assert.equal(res.statusCode, 200);
      const body = res.json<Static<typeof RestoreResult>>();
      assert.equal(body.accepted, false);
      assert.equal(body.message, 'interaction data is already available');
      assert.equal(body.requestId, 'r-1');
      assert.equal(body.status?.state, 'stopped');
      const own = await caller.inject({ method: 'POST', url: '/v1/messages/canvas/welcome/restore', payload: { requestId: 'r-2' } });
      assert.equal(own.statusCode, 200, own.body);
      assert.deepEqual(requesters, ['ops@example.com', 'restore@example.com']);
      await api.close();
    });

    it('unexpected errors → 500 without internals; Temporal down → 503', async () => {
      const api = build({
        stop: () => Promise.reject(new Error('secret connection string mysql://root:hunter2@db')),
        resume: () => Promise.reject(Object.assign(new Error('14 UNAVAILABLE: No connection established'), { code: 14 })),
      });
      const caller = asCaller(api, messagesToken);
      const res = await caller.inject({ method: 'POST', url: '/v1/messages/campaign/x/stop' });
      assert.equal(res.statusCode, 500);
      assert.deepEqual(res.json(), { error: 'internal_error', message: 'internal error; the server log has the details' });
      const down = await caller.inject({ method: 'POST', url: '/v1/messages/campaign/x/resume' });
      assert.equal(down.statusCode, 503);
      assert.equal(down.json<ErrorBody>().error, 'temporal_unavailable');
      await api.close();
    });

    it('GET /healthz → 503 when Temporal does not answer', async () => {
      const deadPort = await freePort();
      const dead = Connection.lazy({ address: `127.0.0.1:${deadPort}`, connectTimeout: 500 });
      const api = buildApi({ auth: auth.auth, lifecycle: stub({}), connection: dead, logger: silent, openapi: false });
      const res = await api.inject({ method: 'GET', url: '/healthz' });
      assert.equal(res.statusCode, 503);
      assert.equal(res.json<Static<typeof Health>>().ok, false);
      assert.equal(res.json<Static<typeof Health>>().temporal, false);
      // Anyone may call /healthz: the reason (here the address it could not reach) stays in the server log.
      assert.equal(res.json<Static<typeof Health>>().message, 'unavailable: Temporal; the server log has the details');
      assert.ok(!res.body.includes(String(deadPort)), res.body);
      await api.close();
      await dead.close();
    });
  });
});
