/**
 * Who may do what, against the real stack: every route of the OpenAPI document without a token, with
 * a token of the wrong scope and with the right one; API tokens and OIDC JWTs (the key set served by
 * this test); whom a restore may e-mail; backdated stops; rate limits and caps; the audit trail; the
 * token and audit commands; the bootstrap token.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WorkflowNotFoundError } from '@temporalio/client';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import pino from 'pino';
import { buildApi, type ApiServer } from '../src/api/app';
import { ensureBootstrapToken } from '../src/auth/bootstrap';
import type { OidcConfig } from '../src/auth/oidc';
import { ROUTE_SCOPES } from '../src/auth/routeScopes';
import { SCOPES, type Scope } from '../src/auth/scopes';
import { runCli } from '../src/cli/main';
import { BulkRestoreClient } from '../src/client/bulkRestoreClient';
import { ErasureClient } from '../src/client/erasureClient';
import { lifecycleWorkflowId } from '../src/shared/workflowId';
import { bearer, testAuth, type TestAuth } from './support/auth';
import { createStack, type TestStack } from './support/stack';

const silent = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const ISSUER = 'https://idp.example.test/';
const AUDIENCE = 'interaction-data';
const uid = (prefix: string) => `${prefix}-${randomBytes(3).toString('hex')}`;

interface KeySet {
  url: string;
  privateKey: CryptoKey;
  close(): Promise<void>;
}

/** The identity provider's key set, served over HTTP the way an IdP's jwks_uri is. */
async function serveKeySet(): Promise<KeySet> {
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'test-key', alg: 'RS256', use: 'sig' };
  const server = http.createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/jwks.json`, privateKey, close: () => new Promise((r) => server.close(() => r())) };
}

async function jwt(
  key: CryptoKey,
  claims: { sub?: string; [claim: string]: unknown },
  opts: { audience?: string; issuer?: string; expiresIn?: string | number; kid?: string } = {},
): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', kid: opts.kid ?? 'test-key' })
    .setIssuer(opts.issuer ?? ISSUER)
    .setAudience(opts.audience ?? AUDIENCE)
    .setSubject(claims.sub ?? 'user-1')
    .setIssuedAt()
    .setExpirationTime(opts.expiresIn ?? '5m')
    .sign(key);
}

/** The OIDC settings of the identity provider this test plays, with its key set at jwksUrl. */
function identityProvider(jwksUrl: string): OidcConfig {
  return { issuer: ISSUER, audience: AUDIENCE, jwksUrl, scopesClaim: 'scope', scopePrefix: 'interaction-data:', clockToleranceSeconds: 5 };
}

/** A concrete URL for a route pattern: real-looking values the route's schema accepts. */
function concreteUrl(pattern: string): string {
  return pattern
    .replace(':kind', 'campaign')
    .replace(':id', 'sec-route-probe')
    .replace(':request', 'br-sec-probe')
    .replace(/\{(\w+)\}/g, (_m, name: string) => (name === 'kind' ? 'campaign' : name === 'request' ? 'br-sec-probe' : 'sec-route-probe'));
}

/** A scope that does not open the route (never admin). */
function wrongScope(access: readonly Scope[]): Scope {
  const other = SCOPES.find((s) => s !== 'admin' && !access.includes(s));
  assert.ok(other, `no wrong scope for ${access.join(',')}`);
  return other;
}

describe('who may do what (HTTP API, real stack)', () => {
  let stack: TestStack;
  let auth: TestAuth;
  let keys: KeySet;
  let app: ApiServer;
  const tokenFor = new Map<string, string>();

  const scoped = async (scope: Scope) => {
    let t = tokenFor.get(scope);
    if (!t) {
      t = await auth.token([scope]);
      tokenFor.set(scope, t);
    }
    return t;
  };

  async function call(
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    url: string,
    token: string | null,
    payload?: unknown,
    api: ApiServer = app,
  ) {
    const res = await api.inject({
      method,
      url,
      headers: token === null ? {} : bearer(token),
      ...(payload === undefined ? {} : { payload: payload as object }),
    });
    const json = String(res.headers['content-type'] ?? '').includes('json') ? res.json<Record<string, unknown>>() : {};
    return { status: res.statusCode, body: json, headers: res.headers };
  }

  async function assertNotStarted(workflowId: string) {
    await assert.rejects(
      stack.client.workflow.getHandle(workflowId).describe(),
      WorkflowNotFoundError,
      `${workflowId} must not have been started`,
    );
  }

  async function auditRows(where: Record<string, unknown>, atLeast = 1) {
    // The entry is written once the response has gone out.
    for (let i = 0; i < 50; i++) {
      const rows = await stack.db('audit_log').where(where).orderBy('id');
      if (rows.length >= atLeast) return rows as Record<string, unknown>[];
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail(`no audit entry ${JSON.stringify(where)}`);
  }

  before(async () => {
    stack = await createStack();
    await stack.startWorker();
    keys = await serveKeySet();
    auth = await testAuth(stack.db, identityProvider(keys.url));
    app = buildApi({
      auth: auth.auth,
      lifecycle: stack.lifecycle,
      bulk: new BulkRestoreClient(stack.client),
      erasures: new ErasureClient(stack.client, stack.db),
      connection: stack.connection,
      db: stack.db,
      logger: silent,
      allowedEmailDomains: ['allowed.example'],
      // Generous: other test files run beside this one (see test/dataplane/helpers.ts).
      temporalTimeoutMs: 30_000,
    });
    await app.ready();
  });

  after(async () => {
    await app?.close();
    await keys?.close();
    await stack?.close();
  });

  it('every route of the OpenAPI document: 401 without a token, 403 with a wrong scope, through with the right one', async () => {
    const doc = (await call('GET', '/openapi.json', auth.adminToken)).body as {
      paths: Record<string, Record<string, { security?: unknown[]; description?: string }>>;
      components: { securitySchemes: Record<string, { type: string; scheme: string }> };
      security: unknown[];
    };
    assert.deepEqual(doc.components.securitySchemes.bearerAuth.type, 'http');
    assert.deepEqual(doc.components.securitySchemes.bearerAuth.scheme, 'bearer');
    assert.deepEqual(doc.security, [{ bearerAuth: [] }]);
    let walked = 0;
    for (const [pathPattern, operations] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(operations)) {
        const m = method.toUpperCase() as 'GET' | 'POST' | 'PUT' | 'DELETE';
        if (m !== 'GET' && m !== 'POST' && m !== 'PUT' && m !== 'DELETE') continue;
        const fastifyPattern = pathPattern.replace(/\{(\w+)\}/g, ':$1');
        const access = ROUTE_SCOPES[`${m} ${fastifyPattern}`];
        assert.ok(access !== undefined, `${m} ${pathPattern} has an access rule`);
        const url = concreteUrl(pathPattern);
        const body = m === 'GET' || m === 'DELETE' ? undefined : {};
        if (access === 'public') {
          assert.deepEqual(op.security, [], `${m} ${pathPattern} is declared public`);
          const open = await call(m, url, null, body);
          assert.notEqual(open.status, 401);
          continue;
        }
        assert.deepEqual(op.security, [{ bearerAuth: [] }], `${m} ${pathPattern} declares the bearer scheme`);
        walked++;
        const none = await call(m, url, null, body);
        assert.equal(none.status, 401, `${m} ${url} without a token`);
        assert.equal(none.body.error, 'unauthorized');
        assert.match(String(none.body.message), /Authorization: Bearer/);
        assert.match(String(none.headers['www-authenticate']), /^Bearer/);
        const garbage = await call(m, url, 'idt_0000000000000000_' + 'A'.repeat(43), body);
        assert.equal(garbage.status, 401, `${m} ${url} with a made-up token`);
        if (access === 'authenticated') continue;
        assert.match(String(op.description), new RegExp(`Scope: \`${access[0]}\``), `${m} ${pathPattern} names its scope`);
        const wrong = await call(m, url, await scoped(wrongScope(access)), body);
        assert.equal(wrong.status, 403, `${m} ${url} with a wrong scope: ${JSON.stringify(wrong.body)}`);
        assert.equal(wrong.body.error, 'forbidden');
        assert.match(String(wrong.body.message), new RegExp(`needs the ${access[0]}`));
        for (const token of [await scoped(access[0]), auth.adminToken]) {
          const right = await call(m, url, token, body);
          assert.ok(
            right.status !== 401 && right.status !== 403 && right.status < 500,
            `${m} ${url} with the right scope got ${right.status} ${JSON.stringify(right.body)}`,
          );
        }
      }
    }
    // Every route of the scope table is in the document, and was walked; the document leaves out only
    // itself and the Prometheus text (test/metrics.test.ts asks the latter for a token).
    const undocumented = ['GET /openapi.json', 'GET /metrics'];
    const documented = Object.keys(ROUTE_SCOPES).filter((k) => ROUTE_SCOPES[k] !== 'public' && !undocumented.includes(k)).length;
    assert.equal(walked, documented);
  });

  it('/healthz needs no token and tells no internals; an unknown route needs a token before it is a 404', async () => {
    const health = await call('GET', '/healthz', null);
    assert.equal(health.status, 200);
    assert.equal(health.body.message, undefined);
    assert.equal((await call('GET', '/v1/nothing-here', null)).status, 401);
    assert.equal((await call('GET', '/v1/nothing-here', auth.adminToken)).status, 404);
  });

  it('tokens: kept hashed; a revoked or expired one is refused with the reason', async () => {
    const made = await auth.tokens.create({ name: 'short-lived', scopes: ['messages'], expiresAt: new Date(Date.now() + 1_500) });
    const rows = await stack.db('api_tokens').select();
    // The secret is everything after `idt_<16 hex>_`: base64url, so it may hold `_` itself.
    const secret = /^idt_[0-9a-f]{16}_(.+)$/.exec(made.token)?.[1] ?? '';
    assert.equal(secret.length, 43);
    assert.ok(!JSON.stringify(rows).includes(secret), 'no secret is kept in clear');
    assert.equal((await call('GET', '/v1/messages?limit=1', made.token)).status, 200);
    await new Promise((r) => setTimeout(r, 1_600));
    const expired = await call('GET', '/v1/messages?limit=1', made.token);
    assert.equal(expired.status, 401);
    assert.match(String(expired.body.message), /expired/);
    const other = await auth.tokens.create({ name: 'to-revoke', scopes: ['messages'] });
    await auth.tokens.revoke(other.record.id);
    const revoked = await call('GET', '/v1/messages?limit=1', other.token);
    assert.equal(revoked.status, 401);
    assert.match(String(revoked.body.message), /revoked/);
    assert.equal((await call('GET', '/v1/messages?limit=1', 'Basic abc')).status, 401);
    const basic = await app.inject({ method: 'GET', url: '/v1/messages?limit=1', headers: { authorization: 'Basic dXNlcjpwYXNz' } });
    assert.equal(basic.statusCode, 401);
    assert.match(basic.json<{ message: string }>().message, /Bearer <token>/);
  });

  it('OIDC: a JWT of the identity provider is a principal with the scopes of its claim; a bad one is refused', async () => {
    const good = await jwt(keys.privateKey, {
      sub: 'alice',
      email: 'alice@idp.example',
      scope: 'openid interaction-data:restore other-app:admin',
    });
    assert.equal((await call('GET', '/v1/restores/br-none', good)).status, 404, 'restore scope opens the route');
    const forbidden = await call('GET', '/v1/users/u-1', good);
    assert.equal(forbidden.status, 403, 'another application’s admin scope is not ours');
    assert.match(String(forbidden.body.message), /"alice@idp.example" has restore/);
    const wrongAudience = await jwt(keys.privateKey, { sub: 'alice', scope: 'interaction-data:admin' }, { audience: 'someone-else' });
    assert.equal((await call('GET', '/v1/restores/br-none', wrongAudience)).status, 401);
    const wrongIssuer = await jwt(keys.privateKey, { sub: 'alice', scope: 'interaction-data:admin' }, { issuer: 'https://evil.example/' });
    assert.equal((await call('GET', '/v1/restores/br-none', wrongIssuer)).status, 401);
    const expired = await jwt(
      keys.privateKey,
      { sub: 'alice', scope: 'interaction-data:admin' },
      { expiresIn: Math.floor(Date.now() / 1000) - 120 },
    );
    const expiredReply = await call('GET', '/v1/restores/br-none', expired);
    assert.equal(expiredReply.status, 401);
    assert.match(String(expiredReply.body.message), /expired/);
    const { privateKey: stranger } = await generateKeyPair('RS256');
    assert.equal(
      (await call('GET', '/v1/restores/br-none', await jwt(stranger, { sub: 'mallory', scope: 'interaction-data:admin' }))).status,
      401,
    );
    // An HMAC token "signed" with something public must never pass.
    const hs = await new SignJWT({ sub: 'mallory', scope: 'interaction-data:admin' })
      .setProtectedHeader({ alg: 'HS256', kid: 'test-key' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode('x'.repeat(32)));
    assert.equal((await call('GET', '/v1/restores/br-none', hs)).status, 401);
    assert.equal((await call('GET', '/v1/restores/br-none', 'not.a.jwt')).status, 401);
  });

  it("OIDC: when the identity provider's key set cannot be fetched, 503, not a verdict on the token", async () => {
    const down = await testAuth(stack.db, identityProvider('http://127.0.0.1:1/jwks.json'));
    const api = buildApi({
      auth: down.auth,
      lifecycle: stack.lifecycle,
      connection: stack.connection,
      db: stack.db,
      logger: silent,
      openapi: false,
    });
    try {
      const token = await jwt(keys.privateKey, { sub: 'alice', scope: 'interaction-data:admin' });
      const res = await call('GET', '/v1/messages?limit=1', token, undefined, api);
      assert.equal(res.status, 503);
      assert.equal(res.body.error, 'auth_unavailable');
      // API tokens do not depend on the identity provider.
      assert.equal((await call('GET', '/v1/messages?limit=1', down.adminToken, undefined, api)).status, 200);
    } finally {
      await api.close();
    }
  });

  it('a restore e-mails the caller, or an allowed domain; anything else is refused before any workflow starts', async () => {
    const id = uid('sec-restore');
    const defined = await call('POST', '/v1/messages', await scoped('messages'), { kind: 'campaign', id, name: 'Security probe' });
    assert.equal(defined.status, 201, JSON.stringify(defined.body));
    const kept = () => stack.db('restore_requests').where({ kind: 'campaign', message_id: id }).count({ n: '*' }).first();
    const before = await kept();
    const url = `/v1/messages/campaign/${id}/restore`;
    const restoreToken = await scoped('restore');
    for (const requestedBy of ['someone@attacker.example', 'restore@example.com.attacker.example', 'x@ALLOWED.example.evil']) {
      const refused = await call('POST', url, restoreToken, { requestedBy });
      assert.equal(refused.status, 400, `${requestedBy}: ${JSON.stringify(refused.body)}`);
      assert.match(String(refused.body.message), /not allowed/);
    }
    const noEmail = await auth.token(['restore'], null);
    const nobody = await call('POST', url, noEmail, {});
    assert.equal(nobody.status, 400);
    assert.match(String(nobody.body.message), /requestedBy is required/);
    assert.deepEqual(await kept(), before, 'no refused request reached the actor');
    const auditEntries = await auditRows({ route: '/v1/messages/:kind/:id/restore', target: `campaign:${id}` }, 4);
    assert.ok(auditEntries.every((e) => e.outcome === 'refused' && e.status === 400));

    const allowed = await call('POST', url, restoreToken, { requestedBy: 'Team@Allowed.example' });
    assert.ok([200, 202].includes(allowed.status), JSON.stringify(allowed.body));
    const own = await call('POST', url, restoreToken, {});
    assert.ok([200, 202].includes(own.status), JSON.stringify(own.body));

    const bulk = await call('POST', '/v1/restores', restoreToken, { ids: [`campaign:${id}`], requestedBy: 'someone@attacker.example' });
    assert.equal(bulk.status, 400);
    assert.match(String(bulk.body.message), /not allowed/);
  });

  it('a stop dated more than a few minutes back needs admin', async () => {
    const id = uid('sec-stop');
    const workflowId = lifecycleWorkflowId({ kind: 'campaign', id });
    const messages = await scoped('messages');
    const hourAgo = new Date(Date.now() - 3_600_000).toISOString();
    const refused = await call('POST', `/v1/messages/campaign/${id}/stop`, messages, { stoppedAt: hourAgo });
    assert.equal(refused.status, 403);
    assert.match(String(refused.body.message), /admin scope/);
    await assertNotStarted(workflowId);
    const now = await call('POST', `/v1/messages/campaign/${id}/stop`, messages, {
      stoppedAt: new Date(Date.now() - 60_000).toISOString(),
    });
    assert.equal(now.status, 200, JSON.stringify(now.body));
    const id2 = uid('sec-stop');
    const admin = await call('POST', `/v1/messages/campaign/${id2}/stop`, auth.adminToken, { stoppedAt: hourAgo });
    assert.equal(admin.status, 200, JSON.stringify(admin.body));

    const [entry] = await auditRows({ route: '/v1/messages/:kind/:id/stop', target: `campaign:${id}`, outcome: 'denied' });
    assert.equal(entry.scope, 'messages', 'the scope got it in; the backdating rule refused it');
    assert.equal(entry.status, 403);
    const [ok] = await auditRows({ route: '/v1/messages/:kind/:id/stop', target: `campaign:${id}`, outcome: 'ok' });
    assert.equal(ok.scope, 'messages');
    assert.match(String(ok.principal), /^token:[0-9a-f]{16}$/);
    assert.equal(ok.principal_name, 'test-messages');
    assert.equal(ok.method, 'POST');
  });

  it('the audit trail keeps refused requests too, with who made them', async () => {
    const id = uid('sec-audit');
    await call('POST', `/v1/messages/campaign/${id}/stop`, null, {});
    const [anon] = await auditRows({ target: `campaign:${id}`, outcome: 'denied' });
    assert.equal(anon.principal, 'anonymous');
    assert.equal(anon.status, 401);
    // Reads of personal data are kept as well.
    await call('GET', `/v1/users/${id}`, await scoped('export'));
    const [read] = await auditRows({ route: '/v1/users/:id', target: id });
    assert.equal(read.scope, 'export');
  });

  it('rate limit per token: 429 with Retry-After, and another token is not held back', async () => {
    const limited = buildApi({
      auth: auth.auth,
      lifecycle: stack.lifecycle,
      connection: stack.connection,
      db: stack.db,
      logger: silent,
      openapi: false,
      limits: { rateLimitMax: 3 },
    });
    await limited.ready();
    try {
      const a = await auth.token(['messages']);
      const b = await auth.token(['messages']);
      for (let i = 0; i < 3; i++)
        assert.equal((await call('GET', '/v1/messages/campaign/none/definition', a, undefined, limited)).status, 404);
      const over = await call('GET', '/v1/messages/campaign/none/definition', a, undefined, limited);
      assert.equal(over.status, 429);
      assert.equal(over.body.error, 'too_many_requests');
      assert.match(String(over.body.message), /retry in/);
      assert.ok(Number(over.headers['retry-after']) > 0, 'Retry-After is set');
      assert.equal((await call('GET', '/v1/messages/campaign/none/definition', b, undefined, limited)).status, 404);
      assert.equal((await call('GET', '/healthz', null, undefined, limited)).status, 200);
    } finally {
      await limited.close();
    }
  });

  it('caps: bulk restores running at once (429 with Retry-After) and messages per request', async () => {
    const capped = buildApi({
      auth: auth.auth,
      lifecycle: stack.lifecycle,
      bulk: new BulkRestoreClient(stack.client),
      connection: stack.connection,
      db: stack.db,
      logger: silent,
      openapi: false,
      limits: { maxRunningBulkRestores: 1, maxBulkMessages: 1 },
    });
    await capped.ready();
    try {
      const tag = uid('sec-tag');
      await stack.db('message_tags').insert([
        { kind: 'campaign', message_id: uid('t'), tag },
        { kind: 'campaign', message_id: uid('t'), tag },
      ]);
      const restore = await scoped('restore');
      const tooMany = await call('POST', '/v1/restores', restore, { tag }, capped);
      assert.equal(tooMany.status, 400);
      assert.match(String(tooMany.body.message), /covers 2 messages/);

      // One bulk restore is running (a real one, held in visibility); the next is told to come back.
      // A workflow of the bulk type on a queue no worker polls: it stays running, and nothing runs it.
      const handle = await stack.client.workflow.start('interactionDataBulkRestore', {
        workflowId: `interaction-data-bulk-restore:${uid('hold')}`,
        taskQueue: 'nobody-polls-this',
        args: [],
      });
      try {
        let refused = null;
        for (let i = 0; i < 50 && refused?.status !== 429; i++) {
          refused = await call('POST', '/v1/restores', restore, { ids: [`campaign:${uid('x')}`] }, capped);
          if (refused.status !== 429) await new Promise((r) => setTimeout(r, 200));
        }
        assert.equal(refused?.status, 429, JSON.stringify(refused?.body));
        assert.equal(refused?.body.error, 'too_many_requests');
        assert.equal(refused?.headers['retry-after'], '60');
      } finally {
        await handle.terminate('test over');
      }
    } finally {
      await capped.close();
    }
  });

  it('admins manage tokens over HTTP too; the secret is in the create answer only', async () => {
    const made = await call('POST', '/v1/tokens', auth.adminToken, { name: 'api-made', scopes: ['export'], email: 'dpo@example.com' });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const token = String(made.body.token);
    assert.match(token, /^idt_[0-9a-f]{16}_/);
    assert.notEqual((await call('GET', '/v1/users/u-1', token)).status, 401);
    const list = await call('GET', '/v1/tokens', auth.adminToken);
    assert.ok(!JSON.stringify(list.body).includes(token.slice(-20)));
    assert.ok(
      (list.body.items as { name: string; createdBy: string }[]).some((t) => t.name === 'api-made' && t.createdBy.startsWith('token:')),
    );
    assert.equal((await call('POST', '/v1/tokens', await scoped('export'), { name: 'escalate', scopes: ['admin'] })).status, 403);
    assert.equal((await call('POST', '/v1/tokens', auth.adminToken, { name: 'bad', scopes: ['root'] })).status, 400);
    const revoked = await call('DELETE', `/v1/tokens/${String(made.body.id)}`, auth.adminToken);
    assert.equal(revoked.status, 200);
    assert.ok(revoked.body.revokedAt);
    assert.equal((await call('GET', '/v1/users/u-1', token)).status, 401);
    assert.equal((await call('DELETE', '/v1/tokens/0123456789abcdef', auth.adminToken)).status, 404);
  });

  it('CLI: tokens create prints the secret once, list never shows it, revoke stops it; audit lists what happened', async () => {
    const env = { ...process.env, ...stack.env };
    const cli = async (...argv: string[]) => {
      let stdout = '';
      let stderr = '';
      const code = await runCli(argv, {
        stdout: { write: (s: string) => (stdout += s) },
        stderr: { write: (s: string) => (stderr += s) },
        env,
      });
      return { code, stdout, stderr };
    };
    const bad = await cli('tokens', 'create', '--name', 'x', '--scopes', 'restore,superuser');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown scope "superuser"/);
    const made = await cli(
      'tokens',
      'create',
      '--name',
      'billing-service',
      '--scopes',
      'restore',
      '--email',
      'billing@example.com',
      '--expires',
      '90d',
    );
    assert.equal(made.code, 0, made.stderr);
    const token = /token\s+(idt_\S+)/.exec(made.stdout)?.[1];
    assert.ok(token, made.stdout);
    assert.match(made.stderr, /shown only now/);
    assert.equal((await call('GET', '/v1/restores/br-none', token)).status, 404);
    const list = await cli('tokens', 'list');
    assert.equal(list.code, 0);
    assert.match(list.stdout, /billing-service\s+restore\s+billing@example.com\s+active/);
    assert.ok(!list.stdout.includes(token.slice(-20)), 'the list never shows a secret');
    const revoked = await cli('tokens', 'revoke', 'billing-service');
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal((await call('GET', '/v1/restores/br-none', token)).status, 401);
    const missing = await cli('tokens', 'revoke', 'no-such-token');
    assert.equal(missing.code, 1);
    const audit = await cli('audit', '--since', '1h');
    assert.equal(audit.code, 0, audit.stderr);
    assert.match(audit.stdout, /CLI tokens create/);
    assert.match(audit.stdout, /CLI tokens revoke/);
    assert.match(audit.stdout, /POST \/v1\/messages\/:kind\/:id\/stop/);
    const json = JSON.parse((await cli('audit', '--since', '1h', '--json', '--principal', 'anonymous')).stdout) as {
      entries: { principal: string }[];
    };
    assert.ok(json.entries.length > 0 && json.entries.every((e) => e.principal === 'anonymous'));
    assert.equal((await cli('audit', '--since', 'yesterday-ish')).code, 2);
  });

  it('bootstrap: API_ADMIN_TOKEN, or a token made once and kept in a file only its owner reads', async () => {
    const chosen = `from-a-secret-manager-${randomBytes(16).toString('hex')}`;
    assert.deepEqual(await ensureBootstrapToken(stack.db, { env: { API_ADMIN_TOKEN: chosen } }), { source: 'env' });
    assert.notEqual((await call('GET', '/v1/users/u-1', chosen)).status, 401);
    await assert.rejects(ensureBootstrapToken(stack.db, { env: { API_ADMIN_TOKEN: 'short' } }), /at least 32 characters/);
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'idt-')), 'api-admin-token');
    const first = await ensureBootstrapToken(stack.db, { env: {}, file });
    assert.ok(first.source === 'file' && first.created);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const second = await ensureBootstrapToken(stack.db, { env: {}, file });
    assert.ok(second.source === 'file' && !second.created && second.token === first.token);
    assert.notEqual((await call('GET', '/v1/users/u-1', first.token)).status, 401);
    // The token chosen before is replaced: one bootstrap token at a time.
    assert.equal((await call('GET', '/v1/users/u-1', chosen)).status, 401);
  });
});
