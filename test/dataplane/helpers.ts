/**
 * Shared set-up of the data plane tests: the real API (fastify inject) over a test stack. Each request
 * carries a token with just the scope its route needs (src/auth/routeScopes.ts), so these tests also
 * show that the table lets each use of the data plane through with the least a client must hold.
 */
import pino from 'pino';
import { buildApi, type ApiServer } from '../../src/api/app';
import { ROUTE_SCOPES } from '../../src/auth/routeScopes';
import { ErasureClient } from '../../src/client/erasureClient';
import type { Scope } from '../../src/auth/scopes';
import { bearer, testAuth } from '../support/auth';
import type { TestStack } from '../support/stack';

/** Each API's token per scope (ingest@example.com, messages@example.com, ...). */
const tokensOf = new WeakMap<ApiServer, Record<Scope, string>>();

export async function dataPlaneApi(stack: TestStack): Promise<ApiServer> {
  const auth = await testAuth(stack.db);
  const api = buildApi({
    auth: auth.auth,
    lifecycle: stack.lifecycle,
    erasures: new ErasureClient(stack.client, stack.db),
    connection: stack.connection,
    db: stack.db,
    logger: pino({ level: 'silent' }),
    // Test files run side by side on two cores: an actor's first answer may take longer than it would
    // on a server of its own, and these tests are about answers, not deadlines.
    temporalTimeoutMs: 60_000,
    openapi: true,
  });
  tokensOf.set(api, {
    ingest: await auth.token(['ingest']),
    messages: await auth.token(['messages']),
    restore: await auth.token(['restore']),
    export: await auth.token(['export']),
    privacy: await auth.token(['privacy']),
    admin: auth.adminToken,
  });
  return api;
}

const ROUTES = Object.entries(ROUTE_SCOPES).map(([key, access]) => {
  const [method, pattern] = key.split(' ');
  return { method, segments: pattern.split('/'), access };
});

/**
 * The Authorization header for a request: the token of the first scope its route names, any token for
 * a route any valid token may call, none for a public one. A URL no route serves gets the messages
 * token, so that it meets the 404 it is sent for.
 */
export function authFor(api: ApiServer, method: string, url: string): Record<string, string> {
  const tokens = tokensOf.get(api);
  if (!tokens) throw new Error('authFor: the API was not made by dataPlaneApi');
  const segments = url.split('?')[0].split('/');
  let best: { access: (typeof ROUTES)[number]['access']; statics: number } | null = null;
  for (const r of ROUTES) {
    if (r.method !== method || r.segments.length !== segments.length) continue;
    if (!r.segments.every((s, i) => s.startsWith(':') || s === segments[i])) continue;
    const statics = r.segments.filter((s) => !s.startsWith(':')).length;
    if (!best || statics > best.statics) best = { access: r.access, statics };
  }
  if (best?.access === 'public') return {};
  const scope: Scope = best && typeof best.access !== 'string' ? best.access[0] : 'messages';
  return bearer(tokens[scope]);
}

export interface Reply<T = unknown> {
  status: number;
  body: T;
  text: string;
  headers: Record<string, unknown>;
}

export async function call<T = Record<string, unknown>>(
  api: ApiServer,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  url: string,
  payload?: unknown,
): Promise<Reply<T>> {
  const res = await api.inject({
    method,
    url,
    headers: authFor(api, method, url),
    ...(payload === undefined ? {} : { payload: payload as object }),
  });
  let body: unknown = null;
  if (String(res.headers['content-type'] ?? '').includes('json')) body = res.json();
  return { status: res.statusCode, body: body as T, text: res.body, headers: res.headers };
}
let seq = 0;
export const eventId = (prefix = 'ev') => `${prefix}-${process.pid}-${Date.now().toString(36)}-${seq++}`;

export interface EventSpec {
  type: string;
  messageKind: 'campaign' | 'canvas';
  messageId: string;
  userId: string;
  at?: string;
  variantId?: string;
  stepId?: string;
  variationId?: string;
  alias?: string;
  channel?: string;
  eventId?: string;
}

export function ev(spec: EventSpec): Record<string, unknown> {
  const { at, ...rest } = spec;
  return { eventId: spec.eventId ?? eventId(), occurredAt: at ?? '2026-01-10T10:00:00.000Z', ...rest };
}
