/**
 * Property-based test of the HTTP API, built as in production (lifecycle, bulk restores, data plane)
 * against a real Temporal server, a worker and MySQL. Requests are generated from the API's own
 * OpenAPI document: every route, path and query parameters and bodies drawn from their schemas, with
 * hostile values (SQL fragments, control and bidi characters, lone surrogates, huge strings, wrong
 * types, prototype keys, malformed JSON, wrong methods and content types) swapped in anywhere.
 *
 * For every request: no 5xx; a refused request (4xx) changed no data table and started no actor; and
 * no input reached SQL as text (see ./support.ts), whether sent by the API or, later, by the worker
 * running the actors the request signalled.
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
import { BulkRestoreClient } from '../../src/client/bulkRestoreClient';
import { createDb, type Db } from '../../src/db/knex';
import { isMessageId, isMessageKind, lifecycleWorkflowId } from '../../src/shared/workflowId';
import type { RunningWorker } from '../../src/worker';
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

function routesOf(doc: { paths: Record<string, Record<string, { parameters?: { in: string; name: string; schema: JsonSchema }[]; requestBody?: { content?: Record<string, { schema?: JsonSchema }> } }>> }): Route[] {
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
    for (const p of route.pathParams) generated[p.name] = fc.oneof({ weight: 4, arbitrary: fromSchema(p.schema, 0) }, { weight: 1, arbitrary: hostileString });
    const known = knownParams(route);
    const params: fc.Arbitrary<Record<string, unknown>> = known.length
      ? fc.oneof({ weight: 1, arbitrary: fc.constantFrom(...known) }, { weight: 1, arbitrary: fc.record(generated) })
      : fc.record(generated);
    const query: Record<string, fc.Arbitrary<unknown>> = {};
    for (const q of route.queryParams) query[q.name] = fc.oneof({ weight: 4, arbitrary: fromSchema(q.schema, 0) }, { weight: 1, arbitrary: hostileString });
    const body: fc.Arbitrary<GeneratedRequest['body']> = route.body
      ? fc.oneof(
          // Mostly valid, so that requests get past validation to the code (and SQL) behind it.
          { weight: 6, arbitrary: fromSchema(route.body, 0).map((value) => ({ kind: 'json' as const, value })) },
          { weight: 3, arbitrary: fromSchema(route.body, 0.05).map((value) => ({ kind: 'json' as const, value })) },
          { weight: 1, arbitrary: hostileJson.map((value) => ({ kind: 'json' as const, value })) },
          { weight: 1, arbitrary: fc.oneof(hostileString, fc.constantFrom('{', '{"a":', '[1,', 'null', '{"__proto__": {"x": 1}}')).map((text) => ({ kind: 'raw' as const, text })) },
        )
      : fc.oneof({ weight: 4, arbitrary: fc.constant({ kind: 'none' as const }) }, { weight: 1, arbitrary: hostileJson.map((value) => ({ kind: 'json' as const, value })) });
    return fc.record({
      route: fc.constant(route),
      method: fc.oneof({ weight: 12, arbitrary: fc.constant(route.method) }, { weight: 1, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE') }),
      params,
      query: fc.record(query, { requiredKeys: [] }),
      body,
      contentType: fc.oneof({ weight: 8, arbitrary: fc.constant('application/json') }, { weight: 1, arbitrary: fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1', null) }),
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

function urlOf(req: GeneratedRequest): string {
  const path = req.route.path.replace(/\{(\w+)\}/g, (_, name: string) => encodeSegment(String(req.params[name] ?? '')));
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(req.query)) if (v !== undefined) qs.append(k, String(v));
  const q = qs.toString();
  return q ? `${path}?${q}` : path;
}

/** The actor a request names in its path, when the name is well-formed. */
function namedWorkflow(req: GeneratedRequest): string | null {
  const { kind, id } = req.params;
  return isMessageKind(kind) && isMessageId(id) ? lifecycleWorkflowId({ kind, id }) : null;
}

describe('HTTP API under generated and hostile input', () => {
  let stack: TestStack;
  let worker: RunningWorker;
  let apiDb: Db;
  let app: ApiServer;
  let sql: SqlCapture;
  let routes: Route[];

  before(async () => {
    stack = await createStack({ ttl: '1 hour', cleanupInterval: '1 hour' });
    worker = await stack.startWorker();
    apiDb = createDb(stack.env.MYSQL_URL);
    app = buildApi({
      lifecycle: stack.lifecycle,
      bulk: new BulkRestoreClient(stack.client),
      connection: stack.connection,
      db: apiDb,
      logger: pino({ level: 'silent' }),
      // Generous: a loaded machine must not turn a slow answer into a 504 that fails the property.
      temporalTimeoutMs: 60_000,
    });
    await app.ready();
    routes = routesOf((await app.inject({ method: 'GET', url: '/openapi.json' })).json());
    sql = new SqlCapture([apiDb, worker.db]);
    await seed();
    useVocabulary(VOCABULARY);
  });

  /** Messages, interactions and an audience to find, created the way a client would. */
  async function seed(): Promise<void> {
    const send = async (method: 'POST' | 'PUT', url: string, payload: unknown) => {
      const res = await app.inject({ method, url, payload: payload as object });
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
        { eventId: 'prop-e1', type: 'received', messageKind: 'campaign', messageId: 'PropCamp01', userId: 'PropUser01', occurredAt: at(30), variantId: 'PropVar01', channel: 'email' },
        { eventId: 'prop-e2', type: 'clicked', messageKind: 'campaign', messageId: 'PropCamp01', userId: "Prop'User02", occurredAt: at(20), variantId: 'PropVar01', alias: 'cta', channel: 'email' },
        { eventId: 'prop-e3', type: 'received', messageKind: 'canvas', messageId: 'PropCanv01', userId: 'PropUser01', occurredAt: at(10), stepId: 'PropStep01', channel: 'push' },
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
  async function waitForQuietActors(): Promise<void> {
    const deadline = Date.now() + 120_000;
    for (;;) {
      const ids = new Set(touched);
      for await (const wf of stack.client.workflow.list({ query: 'ExecutionStatus="Running"' })) ids.add(wf.workflowId);
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

  it(`never answers 5xx, never writes on refusal, never puts input into SQL text (${PROPERTY_RUNS} requests)`, { timeout: 45 * 60_000 }, async (t) => {
    assert.ok(routes.length >= 10, `routes from the OpenAPI document: ${routes.length}`);
    const statuses = new Map<number, number>();
    const byRoute = new Map<string, string[]>();
    const allInputs: string[] = [];
    let boundValues = 0;
    await fc.assert(
      fc.asyncProperty(requestArbitrary(routes), async (req) => {
        const url = urlOf(req);
        const isWrite = WRITE_METHODS.has(req.method);
        const workflowId = isWrite ? namedWorkflow(req) : null;
        const existedBefore = workflowId ? await workflowExists(workflowId) : true;
        if (isWrite) await waitForQuietActors();
        const before = isWrite ? await dataFingerprint(apiDb, WORKER_TABLES) : '';
        const mark = sql.mark();

        const headers: Record<string, string> = {};
        if (req.contentType) headers['content-type'] = req.contentType;
        const payload = req.body.kind === 'json' ? JSON.stringify(req.body.value) ?? 'null' : req.body.kind === 'raw' ? req.body.text : undefined;
        const res = await app.inject({ method: req.method as 'GET', url, headers, ...(payload === undefined ? {} : { payload }) });
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
        const routeKey = `${req.route.method} ${req.route.path}`;
        byRoute.set(routeKey, [...(byRoute.get(routeKey) ?? []), `${res.statusCode}`]);
        if (process.env.PROPERTY_DEBUG) process.stderr.write(`${req.method} ${url} ${payload?.slice(0, 200) ?? ''} → ${res.statusCode} ${res.body.slice(0, 200)}\n`);
        const what = `${req.method} ${url} ${payload?.slice(0, 300) ?? ''} → ${res.statusCode} ${res.body.slice(0, 300)}`;

        assert.ok(res.statusCode < 500, `server error: ${what}`);
        if (res.statusCode >= 400) {
          const ct = String(res.headers['content-type'] ?? '');
          if (ct.includes('json')) assert.equal(typeof (res.json() as { message?: unknown }).message, 'string', `an error says what is wrong: ${what}`);
          if (isWrite) assert.equal(await dataFingerprint(apiDb, WORKER_TABLES), before, `a refused request wrote data: ${what}`);
          if (workflowId && !existedBefore) assert.equal(await workflowExists(workflowId), false, `a refused request started ${workflowId}: ${what}`);
        }
        if (res.statusCode < 300 && isWrite) {
          if (workflowId) touched.add(workflowId);
          const started = String(res.headers['content-type'] ?? '').includes('json') ? (res.json() as { workflowId?: unknown }).workflowId : undefined;
          if (typeof started === 'string') touched.add(started);
        }
        // Actors signalled by this request run their activities now; give them a moment to send their SQL.
        if (res.statusCode < 300 && isWrite) await sleep(150);
        const inputs = [...Object.values(req.params), ...Object.values(req.query)].map(String);
        if (req.body.kind === 'json') inputs.push(...stringsIn(req.body.value));
        if (req.body.kind === 'raw') inputs.push(req.body.text);
        allInputs.push(...inputs);
        const { leaked, bound } = sql.check(mark, inputs);
        boundValues += bound;
        assert.deepEqual(leaked, [], `input reached SQL as text: ${what}`);
      }),
      { numRuns: PROPERTY_RUNS, ...(PROPERTY_SEED === undefined ? {} : { seed: PROPERTY_SEED }), endOnFailure: true, includeErrorInReport: true },
    );
    // Let the last actors finish, then check every statement sent during the run against every input,
    // which also covers SQL an actor sent after its request's own check.
    await sleep(2_000);
    assert.deepEqual(sql.check(0, allInputs).leaked, [], 'input reached SQL as text');
    const summary = [...statuses.entries()].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}×${n}`).join(' ');
    t.diagnostic(`responses: ${summary}; input values seen in SQL, always as bound parameters: ${boundValues}`);
    for (const [route, codes] of byRoute) t.diagnostic(`  ${route}: ${codes.join(' ')}`);
    process.stderr.write(`[property] API responses: ${summary}; values bound into SQL: ${boundValues}\n`);
    assert.ok(boundValues > 0, 'some generated values did reach SQL (as parameters), so the check is not vacuous');
  });
});
