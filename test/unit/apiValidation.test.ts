/**
 * The HTTP API's validation in-process, without a server: every bad request is a 400 that names the
 * field, and none reaches the lifecycle client (so none can start or signal a workflow). The same
 * requests against a real Temporal server are in test/api.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Connection } from '@temporalio/client';
import pino from 'pino';
import { buildApi, type ApiServer, type LifecycleApi } from '../../src/api/app';
import type { Authentication, Authenticator } from '../../src/auth/authenticator';
import type { Principal, Scope } from '../../src/auth/scopes';

/** Tokens are their scopes, comma-separated; `…+noemail` has no e-mail address of its own. */
class ScopesAsTokens implements Authenticator {
  authenticate(authorization: string | undefined): Promise<Authentication> {
    const token = /^Bearer (\S+)$/.exec(authorization ?? '')?.[1];
    if (!token) return Promise.resolve({ ok: false, reason: 'this route needs a token' });
    const [scopes, flag] = token.split('+');
    const principal: Principal = {
      id: `token:${token}`,
      name: token,
      email: flag === 'noemail' ? null : `${scopes.split(',')[0]}@example.com`,
      scopes: scopes.split(',') as Scope[],
      source: 'api-token',
    };
    return Promise.resolve({ ok: true, principal });
  }
}

interface Answer {
  status: number;
  body: { error?: string; message?: string; field?: string };
}

describe('HTTP API validation, in-process', () => {
  const calls: string[] = [];
  const refuse = (name: string) => () => {
    calls.push(name);
    return Promise.reject(new Error(`${name} must not be called for a bad request`));
  };
  const lifecycle: LifecycleApi = {
    stop: refuse('stop'),
    resume: refuse('resume'),
    restore: refuse('restore'),
    retry: refuse('retry'),
    status: refuse('status'),
    list: async function* () {
      calls.push('list');
      await Promise.resolve();
      yield* [];
    },
  };
  let app: ApiServer;

  before(async () => {
    app = buildApi({
      auth: new ScopesAsTokens(),
      allowedEmailDomains: ['example.com'],
      lifecycle,
      // Never dialled: every request below is refused before the lifecycle client is called.
      connection: Connection.lazy({ address: '127.0.0.1:1', connectTimeout: 100 }),
      logger: pino({ level: 'silent' }),
      openapi: false,
    });
    await app.ready();
  });
  after(async () => {
    await app?.close();
    assert.deepEqual(calls, [], 'no bad request reached the lifecycle client');
  });

  const tokenFor = (url: string) => (/\/restore(\?|$)/.test(url) ? 'restore' : 'messages');

  async function post(url: string, payload?: unknown, token: string = tokenFor(url)): Promise<Answer> {
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    const res = await app.inject({
      method: 'POST',
      url,
      headers: typeof payload === 'string' ? { ...headers, 'content-type': 'application/json' } : headers,
      ...(payload === undefined ? {} : { payload: payload as string | object }),
    });
    return { status: res.statusCode, body: res.json() };
  }

  async function get(url: string): Promise<Answer> {
    const res = await app.inject({ method: 'GET', url, headers: { authorization: 'Bearer messages' } });
    return { status: res.statusCode, body: res.json() };
  }

  function assertBadRequest(res: Answer, mentions: RegExp, field?: string): void {
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.equal(res.body.error, 'bad_request');
    assert.match(String(res.body.message), mentions);
    if (field) assert.equal(res.body.field, field);
  }

  it('unknown kind', async () => {
    for (const action of ['stop', 'resume', 'restore']) {
      const res = await post(`/v1/messages/email/abc/${action}`, action === 'restore' ? { requestedBy: 'ops@example.com' } : {});
      assertBadRequest(res, /^kind must be one of campaign, canvas; got "email"$/, 'kind');
    }
    assertBadRequest(await get('/v1/messages/sms/abc'), /kind must be one of campaign, canvas/, 'kind');
  });

  it('malformed id: too long, illegal characters, empty', async () => {
    for (const id of ['x'.repeat(65), 'y'.repeat(300), 'a%20b', 'a%2Fb', '-leading-dash', 'caf%C3%A9', 'semi%3Bcolon', '']) {
      assertBadRequest(await post(`/v1/messages/campaign/${id}/stop`, {}), /^id must be 1-64 characters of letters, digits/, 'id');
    }
  });

  it("malformed e-mail; requestedBy missing for a token without an address, or neither the caller's nor allowed", async () => {
    for (const requestedBy of ['nope', 'a@', '@example.com', 'a b@example.com', 'ops@example', 42, ['ops@example.com'], null]) {
      assertBadRequest(await post('/v1/messages/canvas/c1/restore', { requestedBy }), /^requestedBy must be an e-mail address; got /);
    }
    assertBadRequest(await post('/v1/messages/canvas/c1/restore', {}, 'restore+noemail'), /^requestedBy is required/);
    assertBadRequest(await post('/v1/messages/canvas/c1/restore', undefined, 'restore+noemail'), /^requestedBy is required/);
    assertBadRequest(
      await post('/v1/messages/canvas/c1/restore', { requestedBy: 'someone@elsewhere.org' }),
      /^requestedBy "someone@elsewhere\.org" is not allowed/,
    );
    assertBadRequest(
      await post('/v1/messages/canvas/c1/restore', { requestedBy: 'ops@example.com.evil.org' }, 'restore+noemail'),
      /is not allowed/,
    );
    assertBadRequest(
      await post('/v1/messages/canvas/c1/restore', { requestedBy: 'ops@example.com', requestId: 'has spaces' }),
      /^requestId must be/,
    );
  });

  it('extra properties', async () => {
    assertBadRequest(
      await post('/v1/messages/campaign/c1/stop', { stopedAt: '2026-01-01T00:00:00Z' }),
      /unknown body property "stopedAt"; allowed: stoppedAt/,
    );
    assertBadRequest(
      await post('/v1/messages/campaign/c1/restore', { requestedBy: 'ops@example.com', cc: 'boss@example.com' }),
      /unknown body property "cc"; allowed: requestedBy, requestId/,
    );
    assertBadRequest(
      await post('/v1/messages/campaign/c1/resume', { force: true }),
      /unknown body property "force"; this request takes none/,
    );
  });

  it('bad stoppedAt', async () => {
    for (const stoppedAt of ['yesterday', '2026-01-31', '2026-01-31T12:00:00', '31/01/2026 12:00', 1767225600000, '']) {
      assertBadRequest(
        await post('/v1/messages/campaign/c1/stop', { stoppedAt }),
        /^stoppedAt must be an ISO-8601 instant with a time zone/,
      );
    }
  });

  it('malformed JSON and bodies that are not objects', async () => {
    assertBadRequest(await post('/v1/messages/campaign/c1/stop', '{"stoppedAt": '), /^body is not valid JSON$/);
    assertBadRequest(await post('/v1/messages/campaign/c1/restore', "{requestedBy: 'ops@example.com'}"), /^body is not valid JSON$/);
    assertBadRequest(await post('/v1/messages/campaign/c1/stop', '[]'), /^body must be a JSON object$/);
    assertBadRequest(await post('/v1/messages/campaign/c1/stop', '"stop"'), /^body must be a JSON object$/);
  });

  it('bad list filters', async () => {
    assertBadRequest(
      await get('/v1/messages?state=deleted'),
      /^state must be one of active, stopped, retained, archiving, expired, restoring; got "deleted"$/,
    );
    assertBadRequest(await get('/v1/messages?kind=email'), /^kind must be one of campaign, canvas/);
    assertBadRequest(await get("/v1/messages?tag=x'%20OR%20'1'='1"), /^tag must be/);
    assertBadRequest(await get('/v1/messages?limit=0'), /^limit must be an integer from 1 to 1000; got "?0"?$/);
    assertBadRequest(await get('/v1/messages?limit=5000'), /^limit must be an integer/);
    assertBadRequest(await get('/v1/messages?limit=ten'), /^limit must be an integer/);
    assertBadRequest(await get('/v1/messages?status=expired'), /unknown query string property "status"; allowed: state, tag, kind, limit/);
  });

  it('unknown routes are 404 JSON', async () => {
    for (const [method, url] of [
      ['GET', '/'],
      ['GET', '/v1/campaigns/abc'],
      ['POST', '/v1/messages/campaign/abc/delete'],
      ['GET', '/v1/messages/campaign/abc/stop'],
      ['DELETE', '/v1/messages/campaign/abc'],
    ] as const) {
      const res = await app.inject({ method, url, headers: { authorization: 'Bearer messages' } });
      assert.equal(res.statusCode, 404, `${method} ${url}`);
      assert.equal(res.headers['content-type'], 'application/json; charset=utf-8');
      assert.equal(res.json<Answer['body']>().error, 'not_found');
    }
  });

  it('no token is a 401 and a token without the scope a 403, before any validation', async () => {
    const none = await app.inject({ method: 'POST', url: '/v1/messages/email/abc/stop' });
    assert.equal(none.statusCode, 401);
    assert.match(String(none.headers['www-authenticate']), /^Bearer/);
    const wrong = await post('/v1/messages/email/abc/stop', {}, 'restore');
    assert.equal(wrong.status, 403);
  });
});
