/**
 * Identity on every route: the bearer token is checked before the body is even read, the route's
 * scopes (src/auth/routeScopes.ts) decide, and every mutating request lands in the audit trail with
 * the principal that made it, whatever its outcome, before its answer is sent.
 */
import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import type { Knex } from 'knex';
import { outcomeOf, recordAudit } from '../auth/auditLog';
import type { Authenticator } from '../auth/authenticator';
import { isAudited, routeAccess, type RouteAccess } from '../auth/routeScopes';
import { grantingScope, type Principal, type Scope } from '../auth/scopes';
import { ErrorBody } from './schemas';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who sent the request; null only on the public routes and before authentication. */
    principal: Principal | null;
    /** The scope that let the request through (null on public routes and for `authenticated` ones). */
    grantedScope: Scope | null;
  }
  interface FastifyContextConfig {
    access?: RouteAccess;
  }
}

export const SECURITY_SCHEME = 'bearerAuth';

export interface AuthOptions {
  authenticator: Authenticator;
  /** Where the audit trail is kept; without it, audit entries go to the log only. */
  db?: Knex;
}

function describeAccess(access: RouteAccess): string {
  if (access === 'public') return 'No token needed.';
  if (access === 'authenticated') return 'Any valid token.';
  return `Scope: ${access.map((s) => `\`${s}\``).join(' or ')}${access.includes('admin') ? '' : ' (or `admin`)'}.`;
}

/** What a request acted on, for the audit trail: the message, audience, request or selection it names. */
export function auditTarget(request: FastifyRequest): string {
  const parts: string[] = [];
  const params = (request.params ?? {}) as Record<string, unknown>;
  if (typeof params.kind === 'string' && typeof params.id === 'string') parts.push(`${params.kind}:${params.id}`);
  else if (typeof params.id === 'string') parts.push(params.id);
  if (typeof params.request === 'string') parts.push(`request:${params.request}`);
  const body = request.body;
  if (body !== null && typeof body === 'object' && !Array.isArray(body)) {
    const b = body as Record<string, unknown>;
    if (typeof b.kind === 'string' && typeof b.id === 'string') parts.push(`${b.kind}:${b.id}`);
    if (typeof b.tag === 'string') parts.push(`tag:${b.tag}`);
    if (Array.isArray(b.ids)) parts.push(`${b.ids.length} ids`);
    if (Array.isArray(b.events)) parts.push(`${b.events.length} events`);
    if (Array.isArray(b.userIds)) parts.push(`${b.userIds.length} users`);
  }
  return parts.join(' ');
}

/** Must run before any route is registered: a route without an access rule stops the API from starting. */
export function registerAuth(app: FastifyInstance, options: AuthOptions): void {
  const { authenticator, db } = options;
  app.decorateRequest('principal', null);
  app.decorateRequest('grantedScope', null);

  app.addHook('onRoute', (route: RouteOptions) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const rules = methods.map((m) => routeAccess(m, route.url));
    const access = rules[0];
    if (access === undefined || rules.some((r) => r !== access)) {
      throw new Error(`route ${methods.join(',')} ${route.url} has no access rule in src/auth/routeScopes.ts`);
    }
    route.config = { ...(route.config ?? {}), access };
    const schema = route.schema as (Record<string, unknown> & { response?: Record<string, unknown> }) | undefined;
    if (!schema || schema.hide) return;
    if (access === 'public') {
      schema.security = [];
      return;
    }
    schema.security = [{ [SECURITY_SCHEME]: [] }];
    schema.description = [schema.description, describeAccess(access)].filter(Boolean).join('\n\n');
    schema.response = { 401: ErrorBody, 403: ErrorBody, 429: ErrorBody, ...(schema.response ?? {}) };
  });

  app.addHook('onRequest', async (request, reply) => {
    const access = request.routeOptions.config.access ?? 'authenticated';
    if (access === 'public') return;
    const verdict = await authenticator.authenticate(request.headers.authorization);
    if (!verdict.ok) {
      if (verdict.unavailable)
        return reply.code(503).header('retry-after', '30').send({ error: 'auth_unavailable', message: verdict.reason });
      return reply
        .code(401)
        .header('www-authenticate', `Bearer realm="interaction-data"${request.headers.authorization ? ', error="invalid_token"' : ''}`)
        .send({ error: 'unauthorized', message: verdict.reason });
    }
    request.principal = verdict.principal;
    if (access === 'authenticated') return;
    const scope = grantingScope(verdict.principal, access);
    if (scope === null) {
      const has = verdict.principal.scopes.length ? verdict.principal.scopes.join(', ') : 'no scope of this service';
      return reply.code(403).send({
        error: 'forbidden',
        message: `${request.method} ${request.routeOptions.url} needs the ${access.join(' or ')} scope${access.includes('admin') ? '' : ' (or admin)'}; "${verdict.principal.name}" has ${has}`,
      });
    }
    request.grantedScope = scope;
  });

  // Written before the answer leaves (onSend, not onResponse): a caller told "done" is always in the
  // trail, even if the process dies a moment later.
  app.addHook('onSend', async (request, reply, payload) => {
    const access = request.routeOptions.config.access;
    if (access === undefined || access === 'public' || !isAudited(request.method, access)) return payload;
    const entry = {
      at: new Date(),
      principal: request.principal?.id ?? 'anonymous',
      principalName: request.principal?.name ?? '',
      scope: request.grantedScope,
      method: request.method,
      route: request.routeOptions.url ?? request.url.split('?')[0],
      target: auditTarget(request),
      status: reply.statusCode,
      outcome: outcomeOf(reply.statusCode),
      requestId: String(request.id),
      source: request.ip,
    };
    request.log.info({ audit: { ...entry, at: entry.at.toISOString() } }, 'audit');
    if (db) await recordAudit(db, entry).catch((err: unknown) => request.log.error({ err }, 'the audit entry could not be written'));
    return payload;
  });
}
