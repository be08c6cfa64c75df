/** Shared set-up of the data plane tests: the real API (fastify inject) over a test stack. */
import pino from 'pino';
import { buildApi, type ApiServer } from '../../src/api/app';
import type { TestStack } from '../support/stack';

export function dataPlaneApi(stack: TestStack): ApiServer {
  return buildApi({
    lifecycle: stack.lifecycle,
    connection: stack.connection,
    db: stack.db,
    logger: pino({ level: 'silent' }),
    temporalTimeoutMs: 10_000,
    openapi: true,
  });
}

export interface Reply<T = unknown> {
  status: number;
  body: T;
  text: string;
  headers: Record<string, unknown>;
}

export async function call<T = Record<string, unknown>>(api: ApiServer, method: 'GET' | 'POST' | 'PUT', url: string, payload?: unknown): Promise<Reply<T>> {
  const res = await api.inject({ method, url, ...(payload === undefined ? {} : { payload: payload as object }) });
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
