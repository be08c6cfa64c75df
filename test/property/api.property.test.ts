/**
 * Property-based test of the HTTP API, built as in production (lifecycle, bulk restores, data plane)
 * against a real Temporal server, a worker and MySQL. Requests are generated from the API's own
 * OpenAPI document: every route, path and query parameters and bodies drawn from their schemas, with
 * hostile values (SQL fragments, control and bidi characters, lone surrogates, huge strings, wrong
 * types, prototype keys, malformed JSON, wrong methods and content types) swapped in anywhere.
 *
 * For every request: no 5xx; a refused request (4xx) changed no data table and started no actor; and
 * no input reached SQL as text (see ./support.ts), whether sent by the API or, later, by the worker
 * running the actors the request signalled. These requests carry a valid token: the admin token or
 * one with just the scope the route needs (src/auth/routeScopes.ts), drawn for each request.
 *
 * And the same requests without a valid token (no Authorization header, a malformed one, garbage,
 * a JWT with no identity provider, a revoked or an expired token) or with a token of none of the
 * route's scopes: always 401 resp. 403 with a JSON error, never anything else, and nothing written
 * (every table but the audit trail, which gets exactly the one `denied` entry an audited request
 * earns) and no workflow started.
 *
 *   npm test -- test/property/api.property.test.ts
 *   PROPERTY_RUNS=2000 FAULTS_SEED=42 npm test -- test/property/api.property.test.ts
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WorkflowNotFoundError } from '@temporalio/client';
import fc from 'fast-check';
import pino from 'pino';
import { buildApi, type ApiServer } from '../../src/api/app';
import { isAudited, ROUTE_SCOPES, type RouteAccess } from '../../src/auth/routeScopes';
import { SCOPES, type Scope } from '../../src/auth/scopes';
import { BulkRestoreClient } from '../../src/client/bulkRestoreClient';
import { ErasureClient } from '../../src/client/erasureClient';
import { createDb, type Db } from '../../src/db/knex';
import { isMessageId, isMessageKind, lifecycleWorkflowId } from '../../src/shared/workflowId';
import type { RunningWorker } from '../../src/worker';
import { bearer, testAuth, type TestAuth } from '../support/auth';
import { createStack, sleep, type TestStack } from '../support/stack';
import {
  dataFingerprint,
  fromSchema,
  hostileJson,
  hostileString,
  PROPERTY_RUNS,
  PROPERTY_SEED,
  SqlCapture,
  stringsIn,
  WORKER_TABLES,
  useVocabulary,
  type JsonSchema,
} from './support';

/**
 * What the test creates through the API before generating requests, and the words generated values
 * are drawn from half of the time: requests then find these messages, users and audiences and run
 * their real queries, not just "not found".
 */
const VOCABULARY = [
  'PropCamp01',
  'PropCanv01',
  'PropVar01',
  'PropStep01',
  'PropVari01',
  'PropUser01',
  "Prop'User02",
  'PropAud01',
  'PropTag1',
  'prop.requester@example.com',
  'campaign:PropCamp01',
  'canvas:PropCanv01',
  'PropReq01',
];

interface Route {
  method: string;
  path: string;
  pathParams: { name: string; schema: JsonSchema }[];
  queryParams: { name: string; schema: JsonSchema }[];
  body: JsonSchema | null;
}

interface GeneratedRequest {
  route: Route;
  method: string;
  params: Record<string, unknown>;
  query: Record<string, unknown>;
  body: { kind: 'json'; value: unknown } | { kind: 'raw'; text: string } | { kind: 'none' };
  contentType: string | null;
}

const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

function routesOf(doc: {
  paths: Record<
    string,
    Record<
      string,
      {
        parameters?: { in: string; name: string; schema: JsonSchema }[];
        requestBody?: { content?: Record<string, { schema?: JsonSchema }> };
      }
    >
  >;
}): Route[] {
  const routes: Route[] = [];
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const params = op.parameters ?? [];
      routes.push({
        method: method.toUpperCase(),
        path,
        pathParams: params.filter((p) => p.in === 'path').map((p) => ({ name: p.name, schema: p.schema })),
        queryParams: params.filter((p) => p.in === 'query').map((p) => ({ name: p.name, schema: p.schema })),
        body: op.requestBody?.content?.['application/json']?.schema ?? null,
      });
    }
  }
  return routes;
}

/** Path parameters naming what the test created, per route. */
function knownParams(route: Route): Record<string, string>[] {
  if (route.path.includes('{kind}') && route.path.includes('{id}')) {
    return [
      { kind: 'campaign', id: 'PropCamp01' },
      { kind: 'canvas', id: 'PropCanv01' },
    ];
  }
  if (route.path.startsWith('/v1/audiences/{id}')) return [{ id: 'PropAud01' }];
  if (route.path.startsWith('/v1/users/{id}')) return [{ id: 'PropUser01' }, { id: "Prop'User02" }];
  return [];
}

function requestArbitrary(routes: Route[]): fc.Arbitrary<GeneratedRequest> {
  return fc.constantFrom(...routes).chain((route) => {
    const generated: Record<string, fc.Arbitrary<unknown>> = {};
    for (const p of route.pathParams)
      generated[p.name] = fc.oneof({ weight: 4, arbitrary: fromSchema(p.schema, 0) }, { weight: 1, arbitrary: hostileString });
    const known = knownParams(route);
    const params: fc.Arbitrary<Record<string, unknown>> = known.length
      ? fc.oneof({ weight: 1, arbitrary: fc.constantFrom(...known) }, { weight: 1, arbitrary: fc.record(generated) })
      : fc.record(generated);
    const query: Record<string, fc.Arbitrary<unknown>> = {};
    for (const q of route.queryParams)
      query[q.name] = fc.oneof({ weight: 4, arbitrary: fromSchema(q.schema, 0) }, { weight: 1, arbitrary: hostileString });
    const body: fc.Arbitrary<GeneratedRequest['body']> = route.body
      ? fc.oneof(
          // Mostly valid, so that requests get past validation to the code (and SQL) behind it.
          { weight: 6, arbitrary: fromSchema(route.body, 0).map((value) => ({ kind: 'json' as const, value })) },
          { weight: 3, arbitrary: fromSchema(route.body, 0.05).map((value) => ({ kind: 'json' as const, value })) },
          { weight: 1, arbitrary: hostileJson.map((value) => ({ kind: 'json' as const, value })) },
          {
            weight: 1,
            arbitrary: fc
              .oneof(hostileString, fc.constantFrom('{', '{"a":', '[1,', 'null', '{"__proto__": {"x": 1}}'))
              .map((text) => ({ kind: 'raw' as const, text })),
          },
        )
      : fc.oneof(
          { weight: 4, arbitrary: fc.constant({ kind: 'none' as const }) },
          { weight: 1, arbitrary: hostileJson.map((value) => ({ kind: 'json' as const, value })) },
        );
    return fc.record({
      route: fc.constant(route),
      method: fc.oneof(
        { weight: 12, arbitrary: fc.constant(route.method) },
        { weight: 1, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE') },
      ),
      params,
      query: fc.record(query, { requiredKeys: [] }),
      body,
      contentType: fc.oneof(
        { weight: 8, arbitrary: fc.constant('application/json') },
        {
          weight: 1,
          arbitrary: fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1', null),
        },
      ),
    });
  });
}

/** Percent-encodes anything, lone surrogates included (as the bytes Node would send: U+FFFD). */
function encodeSegment(value: string): string {
  try {
    return encodeURIComponent(value);
  } catch {
    return [...Buffer.from(value, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
  }
}

/** A generated value of any shape, spelled as String spells it, the way a careless client would put it in a URL. */
const spelled = (value: unknown): string => String(value);

function urlOf(req: GeneratedRequest): string {
  const path = req.route.path.replace(/\{(\w+)\}/g, (_, name: string) => encodeSegment(spelled(req.params[name] ?? '')));
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(req.query)) if (v !== undefined) qs.append(k, spelled(v));
  const q = qs.toString();
  return q ? `${path}?${q}` : path;
}

/** The actor a request names in its path, when the name is well-formed. */
function namedWorkflow(req: GeneratedRequest): string | null {
  const { kind, id } = req.params;
  return isMessageKind(kind) && isMessageId(id) ? lifecycleWorkflowId({ kind, id }) : null;
}

/** The ROUTE_SCOPES key of an OpenAPI route: `/v1/messages/{kind}/{id}` → `GET /v1/messages/:kind/:id`. */
const routeKey = (route: Route) => `${route.method} ${route.path.replace(/\{(\w+)\}/g, ':$1')}`;

const ROUTE_PATTERNS = Object.entries(ROUTE_SCOPES).map(([key, access]) => {
  const [method, pattern] = key.split(' ');
  return { method, segments: pattern.split('/'), access };
});

/** The access rule of the route a method and URL reach (a static segment beats a parameter), if any. */
/** The path the server routes: clients and light-my-request resolve `.` and `..` segments first. */
function routedPath(url: string): string {
  return new URL(url, 'http://api.test').pathname;
}

function accessOfUrl(method: string, url: string): RouteAccess | null {
  const segments = url.split('?')[0].split('/');
  let best: { access: RouteAccess; statics: number } | null = null;
  for (const r of ROUTE_PATTERNS) {
    if (r.method !== method || r.segments.length !== segments.length) continue;
    if (!r.segments.every((seg, i) => seg.startsWith(':') || seg === segments[i])) continue;
    const statics = r.segments.filter((seg) => !seg.startsWith(':')).length;
    if (!best || statics > best.statics) best = { access: r.access, statics };
  }
  return best?.access ?? null;
}

/** Who sends a request the API must refuse with 401, and the reason its message must give, when one is certain. */
interface Intruder {
  label: string;
  authorization: string | undefined;
  reason?: RegExp;
}

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** Header values a client can send (printable ASCII and tab): anything else never reaches the API over HTTP. */
const headerSafe = (text: string) => /^[\t\x20-\x7e]*$/.test(text);

function intruders(t: { admin: string; realId: string; revoked: string; expired: string }): fc.Arbitrary<Intruder> {
  const { admin } = t;
  const b64 = (min: number, max: number) => fc.string({ unit: fc.constantFrom(...BASE64URL), minLength: min, maxLength: max });
  return fc.oneof(
    fc.constant<Intruder>({ label: 'no Authorization header', authorization: undefined }),
    fc
      .constantFrom(
        'Bearer',
        'Bearer ',
        'bearer',
        'Basic b3BzOmh1bnRlcjI=',
        `Basic ${admin}`,
        `Token ${admin}`,
        admin,
        `Bearer${admin}`,
        `Bearer\t${admin}`,
        `Bearer "${admin}"`,
        `Bearer ${admin} ${admin}`,
        `Bearer ${admin},Bearer ${admin}`,
        `Bearer ${admin}x`,
        `Bearer ${admin.slice(0, -1)}`,
        `Bearer ${admin.toUpperCase()}`,
      )
      .map((authorization) => ({ label: 'malformed header or mangled token', authorization })),
    // The admin token with one character changed: its id or its secret no longer match.
    fc.tuple(fc.nat({ max: admin.length - 1 }), fc.constantFrom(...BASE64URL)).map(([i, c]) => {
      const swapped = admin[i] === c ? (c === 'A' ? 'B' : 'A') : c;
      return { label: 'admin token, one character changed', authorization: `Bearer ${admin.slice(0, i)}${swapped}${admin.slice(i + 1)}` };
    }),
    fc.stringMatching(/^[!-~]{1,200}$/).map((token) => ({ label: 'garbage bearer token', authorization: `Bearer ${token}` })),
    hostileString.filter(headerSafe).map((token) => ({ label: 'hostile bearer token', authorization: `Bearer ${token}` })),
    fc.tuple(b64(1, 40), b64(1, 80), b64(0, 40)).map(([h, p, sig]) => ({
      label: 'JWT, no identity provider',
      authorization: `Bearer ${h}.${p}.${sig}`,
      reason: /no identity provider/,
    })),
    fc
      .tuple(fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 16, maxLength: 16 }), b64(43, 43))
      .map(([id, secret]) => ({
        label: 'token-shaped, unknown id',
        authorization: `Bearer idt_${id}_${secret}`,
        reason: /^the token is not valid$/,
      })),
    b64(43, 43).map((secret) => ({
      label: "a real token's id, wrong secret",
      authorization: `Bearer idt_${t.realId}_${secret}`,
      reason: /^the token is not valid$/,
    })),
    fc.constant<Intruder>({ label: 'revoked admin token', authorization: `Bearer ${t.revoked}`, reason: /was revoked/ }),
    fc.constant<Intruder>({ label: 'expired admin token', authorization: `Bearer ${t.expired}`, reason: /expired at/ }),
  );
}

describe('HTTP API under generated and hostile input', () => {
  let stack: TestStack;
  let worker: RunningWorker;
  let apiDb: Db;
  let app: ApiServer;
  let sql: SqlCapture;
  let routes: Route[];
  let auth: TestAuth;
  /** A token of each route's first scope (ingest@example.com, messages@example.com, ...). */
  const scopeTokens = new Map<Scope, string>();
  /** Tokens of every non-empty set of the scopes below admin, for the wrong-scope property. */
  const subsetTokens: { scopes: Scope[]; token: string; id: string }[] = [];
  let revokedToken: string;
  let expiredToken: string;

  before(async () => {
    stack = await createStack({ ttl: '1 hour', cleanupInterval: '1 hour' });
    worker = await stack.startWorker();
    apiDb = createDb(stack.env.MYSQL_URL);
    auth = await testAuth(apiDb);
    for (const scope of SCOPES) scopeTokens.set(scope, scope === 'admin' ? auth.adminToken : await auth.token([scope]));
    app = buildApi({
      auth: auth.auth,
      // Restores name prop.requester@example.com (the vocabulary) as well as the caller's own address.
      allowedEmailDomains: ['example.com'],
      // Thousands of requests from a handful of tokens: the rate limit must not answer in the route's place.
      limits: { rateLimitMax: 1_000_000 },
      lifecycle: stack.lifecycle,
      bulk: new BulkRestoreClient(stack.client),
      erasures: new ErasureClient(stack.client, apiDb),
      connection: stack.connection,
      db: apiDb,
      // The worker archives to the stack's store: a user's access request reads its chunks there.
      archiveStores: stack.stores,
      logger: pino({ level: 'silent' }),
      // Generous: a loaded machine must not turn a slow answer into a 504 that fails the property.
      temporalTimeoutMs: 60_000,
    });
    await app.ready();
    routes = routesOf((await app.inject({ method: 'GET', url: '/openapi.json', headers: bearer(auth.adminToken) })).json());
    sql = new SqlCapture([apiDb, worker.db]);
    await seed();
    useVocabulary(VOCABULARY);
    await makeRefusedTokens();
  });

  /** The token a route's own clients hold: of its first scope; admin's for `authenticated`; none for public. */
  function ownToken(route: Route): string | undefined {
    const access = ROUTE_SCOPES[routeKey(route)];
    if (access === 'public') return undefined;
    if (access === undefined || access === 'authenticated') return auth.adminToken;
    return scopeTokens.get(access[0]);
  }

  /**
   * Tokens the API must refuse: one revoked and one expired (both admin, so only their state refuses
   * them), each shown valid first; and tokens of every set of lesser scopes, with and without an address.
   */
  async function makeRefusedTokens(): Promise<void> {
    const revoked = await auth.tokens.create({ name: 'prop-revoked', scopes: ['admin'], email: 'ops@example.com' });
    assert.ok((await auth.tokens.verify(revoked.token)).ok);
    await auth.tokens.revoke(revoked.record.id);
    revokedToken = revoked.token;
    const expiresAt = new Date(Date.now() + 1_500);
    const expired = await auth.tokens.create({ name: 'prop-expired', scopes: ['admin'], expiresAt });
    assert.ok((await auth.tokens.verify(expired.token)).ok, 'valid until its expiry');
    expiredToken = expired.token;
    const lesser = SCOPES.filter((s) => s !== 'admin');
    for (let mask = 1; mask < 1 << lesser.length; mask++) {
      const scopes = lesser.filter((_, i) => mask & (1 << i));
      const { token, record } = await auth.tokens.create({
        name: `prop-${scopes.join('-')}`,
        scopes,
        email: mask % 2 ? `${scopes[0]}@example.com` : null,
      });
      subsetTokens.push({ scopes, token, id: record.id });
    }
    await sleep(Math.max(0, expiresAt.getTime() - Date.now() + 100));
    const verdict = await auth.tokens.verify(expired.token);
    assert.ok(!verdict.ok && /expired/.test(verdict.reason), 'the expired token is now refused');
  }

  /** api_tokens without last_used_at, which verifying a token updates (at most once a minute). */
  async function tokenRows(): Promise<string> {
    const rows = await apiDb('api_tokens')
      .select('id', 'name', 'secret_sha256', 'scopes', 'email', 'created_at', 'created_by', 'expires_at', 'revoked_at')
      .orderBy('id');
    return JSON.stringify(rows);
  }

  async function workflowCount(): Promise<number> {
    return (await stack.client.workflow.count()).count;
  }

  /** Messages, interactions and an audience to find, created the way a client would. */
  async function seed(): Promise<void> {
    const send = async (method: 'POST' | 'PUT', url: string, payload: unknown) => {
      const access = accessOfUrl(method, url);
      const scope: Scope = access !== null && typeof access !== 'string' ? access[0] : 'admin';
      const res = await app.inject({ method, url, headers: bearer(scopeTokens.get(scope) as string), payload: payload as object });
      assert.ok(res.statusCode < 300, `seeding ${method} ${url}: ${res.statusCode} ${res.body}`);
    };
    await send('POST', '/v1/messages', {
      kind: 'campaign',
      id: 'PropCamp01',
      name: 'Property campaign',
      tags: ['PropTag1'],
      variants: [{ id: 'PropVar01', name: 'Variant A' }],
    });
    await send('POST', '/v1/messages', {
      kind: 'canvas',
      id: 'PropCanv01',
      name: 'Property Canvas',
      tags: ['PropTag1'],
      steps: [{ id: 'PropStep01', name: 'Step 1' }],
      variations: [{ id: 'PropVari01', name: 'Variation 1' }],
    });
    const at = (m: number) => new Date(Date.now() - m * 60_000).toISOString();
    await send('POST', '/v1/interactions', {
      events: [
        {
          eventId: 'prop-e1',
          type: 'received',
          messageKind: 'campaign',
          messageId: 'PropCamp01',
          userId: 'PropUser01',
          occurredAt: at(30),
          variantId: 'PropVar01',
          channel: 'email',
        },
        {
          eventId: 'prop-e2',
          type: 'clicked',
          messageKind: 'campaign',
          messageId: 'PropCamp01',
          userId: "Prop'User02",
          occurredAt: at(20),
          variantId: 'PropVar01',
          alias: 'cta',
          channel: 'email',
        },
        {
          eventId: 'prop-e3',
          type: 'received',
          messageKind: 'canvas',
          messageId: 'PropCanv01',
          userId: 'PropUser01',
          occurredAt: at(10),
          stepId: 'PropStep01',
          channel: 'push',
        },
      ],
    });
    await send('PUT', '/v1/audiences/PropAud01', {
      type: 'segment',
      name: 'Property segment',
      active: true,
      filters: [{ type: 'received_message_from_campaign', messageKind: 'campaign', messageId: 'PropCamp01' }],
    });
  }
  after(async () => {
    await app?.close();
    await apiDb?.destroy();
    await stack?.close();
  });

  async function workflowExists(workflowId: string): Promise<boolean> {
    try {
      await stack.client.workflow.getHandle(workflowId).describe();
      return true;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return false;
      throw err;
    }
  }

  /** Actors a request of this run named, besides those visibility lists (which may lag a new start). */
  const touched = new Set<string>();

  /**
   * Waits until no actor has a workflow task or activity under way. A request accepted earlier may have
   * set an actor going (a stop dated long ago expires it at once; a restore rehydrates rows), and its
   * writes must not be mistaken for the next, refused request's.
   */
  async function waitForQuietActors(only?: readonly string[]): Promise<void> {
    const deadline = Date.now() + 120_000;
    for (;;) {
      const ids = new Set(only ?? touched);
      if (!only) for await (const wf of stack.client.workflow.list({ query: 'ExecutionStatus="Running"' })) ids.add(wf.workflowId);
      let busy: string | null = null;
      for (const id of ids) {
        try {
          const d = await stack.client.workflow.getHandle(id).describe();
          if (d.status.name !== 'RUNNING') continue;
          if ((d.raw.pendingActivities?.length ?? 0) > 0 || d.raw.pendingWorkflowTask) {
            busy = id;
            break;
          }
        } catch (err) {
          if (err instanceof WorkflowNotFoundError) continue;
          throw err;
        }
      }
      if (busy === null) return;
      if (Date.now() > deadline) throw new Error(`actor ${busy} still busy after two minutes`);
      await sleep(100);
    }
  }

  /** Tables a request writes besides the data: the audit trail, and api_tokens.last_used_at (see tokenRows). */
  const AUTH_TABLES = ['audit_log', 'api_tokens'];

  async function auditCount(): Promise<number> {
    const row = (await apiDb('audit_log').count({ n: '*' }).first()) as { n: number | string };
    return Number(row.n);
  }

  interface Refusal {
    caller: string;
    authorization: string | undefined;
    status: 401 | 403;
    /** What the error message must say, when certain. */
    reason?: RegExp;
    /** The audit trail's principal for the refusal: `anonymous`, or the token's. */
    principal: string;
  }

  /**
   * One refused request: answered `status` with a JSON error, nothing but the audit trail written (and
   * there exactly the one `denied` entry an audited route earns), no workflow started, and neither the
   * request's values nor its Authorization header inside SQL text.
   */
  async function assertRefused(req: GeneratedRequest, who: Refusal): Promise<void> {
    const url = urlOf(req);
    const workflowId = namedWorkflow(req);
    const existedBefore = workflowId ? await workflowExists(workflowId) : true;
    // An unauthenticated request must not even touch api_tokens.last_used_at; a refused token may.
    const excluded = who.status === 401 ? ['audit_log'] : AUTH_TABLES;
    const before = {
      data: await dataFingerprint(apiDb, excluded),
      tokens: await tokenRows(),
      workflows: await workflowCount(),
      audit: await auditCount(),
    };
    const mark = sql.mark();

    const headers: Record<string, string> = {};
    if (req.contentType) headers['content-type'] = req.contentType;
    if (who.authorization !== undefined) headers.authorization = who.authorization;
    const payload =
      req.body.kind === 'json' ? (JSON.stringify(req.body.value) ?? 'null') : req.body.kind === 'raw' ? req.body.text : undefined;
    const res = await app.inject({ method: req.method as 'GET', url, headers, ...(payload === undefined ? {} : { payload }) });
    const what = `${who.caller} (${JSON.stringify(who.authorization?.slice(0, 80))}): ${req.method} ${url} ${payload?.slice(0, 200) ?? ''} → ${res.statusCode} ${res.body.slice(0, 300)}`;
    if (process.env.PROPERTY_DEBUG) process.stderr.write(`${what}\n`);

    assert.equal(res.statusCode, who.status, what);
    assert.match(String(res.headers['content-type'] ?? ''), /^application\/json/, what);
    const body = res.json<{ error?: unknown; message?: unknown }>();
    assert.equal(body.error, who.status === 401 ? 'unauthorized' : 'forbidden', what);
    assert.equal(typeof body.message, 'string', what);
    if (who.reason) assert.match(String(body.message), who.reason, what);
    if (who.status === 401) assert.match(String(res.headers['www-authenticate'] ?? ''), /^Bearer realm="interaction-data"/, what);

    // The only trace a refusal leaves: its audit entry, on a route whose requests are audited.
    const path = routedPath(url);
    const access = app.findRoute({ method: req.method, url: path }) ? accessOfUrl(req.method, path) : null;
    const audited = access !== null && access !== 'public' && isAudited(req.method, access);
    if (audited) {
      const deadline = Date.now() + 5_000;
      while ((await auditCount()) === before.audit && Date.now() < deadline) await sleep(20);
      const entry = await apiDb('audit_log')
        .orderBy('id', 'desc')
        .first<{ principal: string; outcome: string; status: number; method: string } | undefined>();
      assert.equal(await auditCount(), before.audit + 1, `one audit entry: ${what}`);
      assert.deepEqual(
        [entry?.principal, entry?.outcome, entry?.status, entry?.method],
        [who.principal, 'denied', who.status, req.method],
        what,
      );
    } else {
      assert.equal(await auditCount(), before.audit, `no audit entry: ${what}`);
    }
    assert.equal(await dataFingerprint(apiDb, excluded), before.data, `a refused request wrote data: ${what}`);
    assert.equal(await tokenRows(), before.tokens, `a refused request changed a token: ${what}`);
    assert.equal(await workflowCount(), before.workflows, `a refused request started a workflow: ${what}`);
    if (workflowId && !existedBefore)
      assert.equal(await workflowExists(workflowId), false, `a refused request started ${workflowId}: ${what}`);

    const inputs = [...Object.values(req.params), ...Object.values(req.query)].map(String);
    if (req.body.kind === 'json') inputs.push(...stringsIn(req.body.value));
    if (req.body.kind === 'raw') inputs.push(req.body.text);
    if (who.authorization !== undefined) inputs.push(who.authorization);
    assert.deepEqual(sql.check(mark, inputs).leaked, [], `input reached SQL as text: ${what}`);
  }

  /** Every route of the OpenAPI document has its rule in ROUTE_SCOPES; the public ones are left out here. */
  function guardedRoutes(): Route[] {
    for (const r of routes) assert.ok(ROUTE_SCOPES[routeKey(r)] !== undefined, `${routeKey(r)} has an access rule`);
    return routes.filter((r) => ROUTE_SCOPES[routeKey(r)] !== 'public');
  }

  it(
    `answers every request without a valid token 401 and writes nothing (${PROPERTY_RUNS} requests)`,
    { timeout: 30 * 60_000 },
    async (t) => {
      const guarded = guardedRoutes();
      assert.ok(guarded.length >= 10, `guarded routes: ${guarded.length}`);
      await waitForQuietActors();
      const workflowsAtStart = await workflowCount();
      const callers = new Map<string, number>();
      const admin = auth.adminToken;
      const realId = /^idt_([0-9a-f]{16})_/.exec(admin)?.[1];
      assert.ok(realId, 'the admin token is an idt_ token');
      await fc.assert(
        fc.asyncProperty(
          requestArbitrary(guarded),
          intruders({ admin, realId, revoked: revokedToken, expired: expiredToken }),
          async (req, intruder) => {
            callers.set(intruder.label, (callers.get(intruder.label) ?? 0) + 1);
            await assertRefused(req, {
              caller: intruder.label,
              authorization: intruder.authorization,
              status: 401,
              reason: intruder.reason,
              principal: 'anonymous',
            });
          },
        ),
        {
          numRuns: PROPERTY_RUNS,
          ...(PROPERTY_SEED === undefined ? {} : { seed: PROPERTY_SEED }),
          endOnFailure: true,
          includeErrorInReport: true,
        },
      );
      // Visibility may show a start late: the namespace still holds as many workflows a moment later.
      await sleep(1_000);
      assert.equal(await workflowCount(), workflowsAtStart, 'no workflow was started by a request without a valid token');
      t.diagnostic(`callers: ${[...callers].map(([c, n]) => `${c}×${n}`).join(', ')}`);
    },
  );

  it(
    `answers every request with a token of none of the route's scopes 403 and writes nothing (${PROPERTY_RUNS} requests)`,
    { timeout: 30 * 60_000 },
    async (t) => {
      // Routes that need a scope; for each, the tokens holding none of its scopes (admin holds every one).
      const scoped = guardedRoutes().flatMap((route) => {
        const access = ROUTE_SCOPES[routeKey(route)];
        if (!Array.isArray(access)) return [];
        const wrong = subsetTokens.filter((s) => !s.scopes.some((scope) => access.includes(scope)));
        return wrong.length ? [{ route, access, wrong }] : [];
      });
      assert.ok(scoped.length >= 10, `routes that need a scope: ${scoped.length}`);
      await waitForQuietActors();
      const workflowsAtStart = await workflowCount();
      const byRoute = new Map<string, number>();
      const cases = fc.constantFrom(...scoped).chain(({ route, access, wrong }) =>
        fc.record({
          // The route's own method: a wrong one is not this route (its 404 comes after authentication).
          req: requestArbitrary([route]).map((req) => ({ ...req, method: route.method })),
          access: fc.constant(access),
          holder: fc.constantFrom(...wrong),
        }),
      );
      await fc.assert(
        fc.asyncProperty(cases, async ({ req, access, holder }) => {
          // A hostile path parameter may take the URL off the route (too long, or empty where find-my-way wants one).
          // A `.` or `..` parameter resolves to another path, maybe another route's (with other scopes).
          fc.pre(app.findRoute({ method: req.method, url: routedPath(urlOf(req)) }) !== null);
          fc.pre(JSON.stringify(accessOfUrl(req.method, routedPath(urlOf(req)))) === JSON.stringify(access));
          byRoute.set(routeKey(req.route), (byRoute.get(routeKey(req.route)) ?? 0) + 1);
          const needs = new RegExp(`needs the ${access.join(' or ')} scope`);
          await assertRefused(req, {
            caller: `token of ${holder.scopes.join(', ')}`,
            authorization: `Bearer ${holder.token}`,
            status: 403,
            reason: needs,
            principal: `token:${holder.id}`,
          });
        }),
        {
          numRuns: PROPERTY_RUNS,
          ...(PROPERTY_SEED === undefined ? {} : { seed: PROPERTY_SEED }),
          endOnFailure: true,
          includeErrorInReport: true,
        },
      );
      await sleep(1_000);
      assert.equal(await workflowCount(), workflowsAtStart, 'no workflow was started by a request with the wrong scope');
      t.diagnostic(`routes: ${[...byRoute].map(([r, n]) => `${r}×${n}`).join(', ')}`);
    },
  );

  it(
    `never answers 5xx, never writes on refusal, never puts input into SQL text (${PROPERTY_RUNS} requests)`,
    { timeout: 45 * 60_000 },
    async (t) => {
      assert.ok(routes.length >= 10, `routes from the OpenAPI document: ${routes.length}`);
      const statuses = new Map<number, number>();
      const byRoute = new Map<string, string[]>();
      const allInputs: string[] = [];
      let boundValues = 0;
      await fc.assert(
        // The caller: admin (gets past every scope and policy check) or a client of just the route's scope.
        fc.asyncProperty(requestArbitrary(routes), fc.boolean(), async (req, asAdmin) => {
          const url = urlOf(req);
          const isWrite = WRITE_METHODS.has(req.method);
          const workflowId = isWrite ? namedWorkflow(req) : null;
          const existedBefore = workflowId ? await workflowExists(workflowId) : true;
          if (isWrite) await waitForQuietActors();
          const before = isWrite ? await dataFingerprint(apiDb, [...WORKER_TABLES, ...AUTH_TABLES]) : '';
          const tokensBefore = isWrite ? await tokenRows() : '';
          const mark = sql.mark();

          const headers: Record<string, string> = {};
          if (req.contentType) headers['content-type'] = req.contentType;
          const token = asAdmin ? auth.adminToken : ownToken(req.route);
          if (token !== undefined) headers.authorization = `Bearer ${token}`;
          const payload =
            req.body.kind === 'json' ? (JSON.stringify(req.body.value) ?? 'null') : req.body.kind === 'raw' ? req.body.text : undefined;
          const res = await app.inject({ method: req.method as 'GET', url, headers, ...(payload === undefined ? {} : { payload }) });
          statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
          const routeKey = `${req.route.method} ${req.route.path}`;
          byRoute.set(routeKey, [...(byRoute.get(routeKey) ?? []), `${res.statusCode}`]);
          if (process.env.PROPERTY_DEBUG)
            process.stderr.write(`${req.method} ${url} ${payload?.slice(0, 200) ?? ''} → ${res.statusCode} ${res.body.slice(0, 200)}\n`);
          const what = `${asAdmin ? 'admin' : 'own scope'}: ${req.method} ${url} ${payload?.slice(0, 300) ?? ''} → ${res.statusCode} ${res.body.slice(0, 300)}`;

          assert.ok(res.statusCode < 500, `server error: ${what}`);
          if (res.statusCode >= 400) {
            const ct = String(res.headers['content-type'] ?? '');
            if (ct.includes('json'))
              assert.equal(typeof res.json<{ message?: unknown }>().message, 'string', `an error says what is wrong: ${what}`);
            if (isWrite)
              assert.equal(
                await dataFingerprint(apiDb, [...WORKER_TABLES, ...AUTH_TABLES]),
                before,
                `a refused request wrote data: ${what}`,
              );
            if (isWrite) assert.equal(await tokenRows(), tokensBefore, `a refused request changed a token: ${what}`);
            if (workflowId && !existedBefore)
              assert.equal(await workflowExists(workflowId), false, `a refused request started ${workflowId}: ${what}`);
          }
          const accepted: string[] = [];
          if (res.statusCode < 300 && isWrite) {
            if (workflowId) accepted.push(workflowId);
            const started = String(res.headers['content-type'] ?? '').includes('json')
              ? res.json<{ workflowId?: unknown }>().workflowId
              : undefined;
            if (typeof started === 'string') accepted.push(started);
            for (const id of accepted) touched.add(id);
            // Actors signalled by this request run their activities now: their SQL is checked below too.
            await waitForQuietActors(accepted);
          }
          const inputs = [...Object.values(req.params), ...Object.values(req.query)].map(String);
          if (req.body.kind === 'json') inputs.push(...stringsIn(req.body.value));
          if (req.body.kind === 'raw') inputs.push(req.body.text);
          allInputs.push(...inputs);
          const { leaked, bound } = sql.check(mark, inputs);
          boundValues += bound;
          assert.deepEqual(leaked, [], `input reached SQL as text: ${what}`);
        }),
        {
          numRuns: PROPERTY_RUNS,
          ...(PROPERTY_SEED === undefined ? {} : { seed: PROPERTY_SEED }),
          endOnFailure: true,
          includeErrorInReport: true,
        },
      );
      // Let the last actors finish, then check every statement sent during the run against every input,
      // which also covers SQL an actor sent after its request's own check.
      await waitForQuietActors();
      assert.deepEqual(sql.check(0, allInputs).leaked, [], 'input reached SQL as text');
      const summary = [...statuses.entries()]
        .sort((a, b) => a[0] - b[0])
        .map(([s, n]) => `${s}×${n}`)
        .join(' ');
      t.diagnostic(`responses: ${summary}; input values seen in SQL, always as bound parameters: ${boundValues}`);
      for (const [route, codes] of byRoute) t.diagnostic(`  ${route}: ${codes.join(' ')}`);
      process.stderr.write(`[property] API responses: ${summary}; values bound into SQL: ${boundValues}\n`);
      assert.ok(boundValues > 0, 'some generated values did reach SQL (as parameters), so the check is not vacuous');
    },
  );
});
