/**
 * The scopes each route of the HTTP API needs: the one table of who may call what. A route missing
 * here fails the API's start, so no route is ever served without a decision.
 */
import type { Scope } from './scopes';

/** `public`: no token (liveness only); `authenticated`: any valid token; otherwise any of these scopes (or admin). */
export type RouteAccess = 'public' | 'authenticated' | readonly Scope[];

export const ROUTE_SCOPES: Readonly<Record<string, RouteAccess>> = {
  'GET /healthz': 'public',
  'GET /openapi.json': 'authenticated',
  // Prometheus scrapes with a token of its own (any scope: the figures name no user or message).
  'GET /metrics': 'authenticated',

  'POST /v1/interactions': ['ingest'],

  'POST /v1/messages': ['messages'],
  'PUT /v1/messages/:kind/:id': ['messages'],
  'GET /v1/messages/:kind/:id/definition': ['messages'],
  'POST /v1/messages/resume': ['messages'],
  'POST /v1/messages/:kind/:id/stop': ['messages'],
  'POST /v1/messages/:kind/:id/resume': ['messages'],
  'GET /v1/messages/:kind/:id': ['messages', 'restore'],
  'GET /v1/messages': ['messages', 'restore'],
  'GET /v1/messages/:kind/:id/analytics': ['messages'],
  'PUT /v1/audiences/:id': ['messages'],
  'GET /v1/audiences/:id': ['messages'],
  'POST /v1/audiences/activate': ['messages'],
  'POST /v1/retargeting/evaluate': ['messages'],
  'GET /v1/forecast': ['messages', 'restore'],
  'GET /v1/storage': ['messages', 'restore'],

  'POST /v1/messages/:kind/:id/restore': ['restore'],
  'POST /v1/restores': ['restore'],
  'GET /v1/restores/:request': ['restore'],

  'GET /v1/users/:id': ['export'],
  'GET /v1/users/:id/interactions': ['export'],
  'POST /v1/users/export': ['export'],
  'GET /v1/messages/:kind/:id/user-data.csv': ['export'],

  // A user's erasure cannot be undone: its own scope, never implied by export.
  'DELETE /v1/users/:id': ['privacy'],
  'GET /v1/privacy/erasures/:request': ['privacy'],

  // Runs a failed archive or restore again: an operator's decision after fixing the cause.
  'POST /v1/messages/:kind/:id/retry': ['admin'],
  // The brake stops every archive in the deployment: an operator's decision, like a retry.
  'GET /v1/archiving': ['messages', 'restore'],
  'POST /v1/archiving/pause': ['admin'],
  'POST /v1/archiving/resume': ['admin'],
  'POST /v1/tokens': ['admin'],
  'GET /v1/tokens': ['admin'],
  'DELETE /v1/tokens/:id': ['admin'],
};

/** The access rule of a route; HEAD shares its GET's. Undefined when the table has no entry. */
export function routeAccess(method: string, url: string): RouteAccess | undefined {
  return ROUTE_SCOPES[`${method === 'HEAD' ? 'GET' : method} ${url}`];
}

/** Reads of personal data (exports, an erasure's progress, which names its user while it runs) are kept in the audit trail like writes. */
export function isAudited(method: string, access: RouteAccess): boolean {
  if (method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS') return true;
  return Array.isArray(access) && (access.includes('export') || access.includes('privacy'));
}
