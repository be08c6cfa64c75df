/**
 * The HTTP API: a thin, strictly validated front for the lifecycle client. Every request is checked
 * against its schema before anything reaches Temporal, so a rejected request never signals a message.
 */
import type { ArchiveStores } from '../archive/store';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import { TypeBoxValidatorCompiler, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { WorkflowNotFoundError, type Connection } from '@temporalio/client';
import type { Knex } from 'knex';
import type { LifecycleClient } from '../client/lifecycleClient';
import type { Logger } from '../logger';
import { lifecycleWorkflowId } from '../shared/workflowId';
import { registerBulkRoutes, type BulkRestoreApi } from './bulkRoutes';
import { countStatesFrom, METRICS_CONTENT_TYPE, metricsText } from '../metrics/metrics';
import { registerReportRoutes } from './reportRoutes';
import { registerArchivingRoutes } from './archivingRoutes';
import { assertCallbackUrl, type CallbackPolicy } from '../callbacks/callbackUrl';
import { registerPrivacyRoutes, type ErasureApi } from './privacyRoutes';
import { classifyFailure, errorMessage } from './errors';
import { dataPlaneRoutes } from './dataPlaneRoutes';
import { isDataPlaneLifecycle } from '../dataplane/lifecyclePort';
import { loadMessage } from '../dataplane/messages';
import { guardResume, resumeMessages } from '../dataplane/messageService';
import {
  ErrorBody,
  FIELD_RULES,
  Health,
  LIST_LIMIT_DEFAULT,
  ListQuery,
  ListResult,
  LifecycleStatusSchema,
  MessageParams,
  RestoreBody,
  RestoreResult,
  ResumeBody,
  RetryResult,
  ActorAnswer,
  StopBody,
} from './schemas';
import { isKnownMessage } from '../storage/availability';
import type { Authenticator } from '../auth/authenticator';
import { checkStoppedAt, PolicyError, restoreRecipient } from '../auth/policy';
import { SCOPE_DESCRIPTIONS, SCOPES, type Principal } from '../auth/scopes';
import { registerAuth, SECURITY_SCHEME } from './auth';
import { requestPart, type ValidationContext } from './requestPart';
import { registerTokenRoutes } from './tokenRoutes';
import { DEFAULT_API_LIMITS, type ApiLimits } from './limits';

/** The part of LifecycleClient the API uses; tests may pass a stand-in with the same shape. */
export type LifecycleApi = Pick<LifecycleClient, 'stop' | 'resume' | 'restore' | 'retry' | 'status' | 'list'>;

export interface ApiOptions {
  lifecycle: LifecycleApi;
  /** Where archived chunks are read for a user's access request; the MySQL store alone when not given. */
  archiveStores?: ArchiveStores;
  /** Who is calling: API tokens and OIDC JWTs (src/auth/authenticator.ts). Every route but /healthz needs it. */
  auth: Authenticator;
  /** Domains whose addresses a restore may name as its requester besides the caller's own (`EMAIL_ALLOWED_DOMAINS`). */
  allowedEmailDomains?: readonly string[];
  /** Which callback URLs a restore may name; none when not given (CALLBACK_ALLOWED_HOSTS, CALLBACK_SIGNING_SECRET). */
  callbacks?: CallbackPolicy;
  /** Rate limit, timeouts and caps; DEFAULT_API_LIMITS when not given. */
  limits?: Partial<ApiLimits>;
  /** Serves POST /v1/restores and GET /v1/restores/{request} when given. */
  bulk?: BulkRestoreApi;
  /** Serves DELETE /v1/users/{id} and GET /v1/privacy/erasures/{request} when given. */
  erasures?: ErasureApi;
  /** Used by /healthz and to put a deadline on every call to Temporal. */
  connection: Connection;
  /** When given, /healthz also checks the database. */
  db?: Knex;
  logger: Logger;
  /**
   * Upper bound for the Temporal calls of one request. A status query waits for a worker, so without
   * a bound a request would hang for as long as no worker runs.
   */
  temporalTimeoutMs?: number;
  /** Serve the OpenAPI document at /openapi.json (default true). */
  openapi?: boolean;
  /** How long a User Data CSV export may run; `USERS_EXPORT_TIME_LIMIT` when not given. */
  usersExportTimeLimitMs?: number;
}

export type ApiServer = FastifyInstance<Server, IncomingMessage, ServerResponse, FastifyBaseLogger, TypeBoxTypeProvider>;

export const ALREADY_AVAILABLE_MESSAGE = 'interaction data is already available';

const HEALTH_TIMEOUT_MS = 3_000;

const CODE_BY_STATUS: Record<number, string> = {
  400: 'bad_request',
  404: 'not_found',
  405: 'method_not_allowed',
  406: 'not_acceptable',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  429: 'too_many_requests',
};

interface SchemaError {
  keyword?: string;
  instancePath?: string;
  params?: { missingProperty?: string; [key: string]: unknown };
  message?: string;
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function schemaPropertyNames(request: FastifyRequest, context: ValidationContext): string[] {
  const schema = request.routeOptions.schema?.[context] as { properties?: Record<string, unknown> } | undefined;
  return Object.keys(schema?.properties ?? {});
}

/**
 * Turns the validator's errors into one sentence per offending field, naming the field and the rule,
 * instead of JSON-pointer jargon such as `body/kind must match a schema in anyOf`.
 */
export function formatValidationErrors(
  errors: readonly SchemaError[],
  context: ValidationContext,
  request: FastifyRequest,
): { message: string; field: string | null } {
  const { input, where } = requestPart(request, context);
  const data = input !== null && typeof input === 'object' ? (input as Record<string, unknown>) : undefined;
  const sentences: string[] = [];
  const fields: string[] = [];
  const add = (field: string | null, sentence: string) => {
    if (field !== null && fields.includes(field)) return;
    if (field !== null) fields.push(field);
    sentences.push(sentence);
  };

  for (const err of errors) {
    const path = (err.instancePath ?? '').split('/').filter(Boolean);
    if (err.keyword === 'additionalProperties') {
      const extra = (err.params?.additionalProperties as string[] | undefined) ?? [];
      const allowed = schemaPropertyNames(request, context);
      const names = extra.map((n) => JSON.stringify(n)).join(', ');
      add(
        extra[0] ?? null,
        `unknown ${where} ${extra.length > 1 ? 'properties' : 'property'} ${names}` +
          (allowed.length ? `; allowed: ${allowed.join(', ')}` : `; this request takes none`),
      );
    } else if (err.keyword === 'required') {
      const missing =
        (err.params?.requiredProperties as string[] | undefined) ??
        (err.params?.missingProperty ? [String(err.params.missingProperty)] : []);
      for (const name of missing) add(name, `${name} is required${FIELD_RULES[name] ? ` and ${FIELD_RULES[name]}` : ''}`);
    } else if (path.length === 0 && err.keyword === 'type') {
      add(null, context === 'body' ? 'body must be a JSON object' : `${where} is malformed`);
    }
  }
  // Field-level rules come after structural problems; the unknown-property errors above also show
  // up as "schema is false" at the property's own path, which must not be reported twice.
  for (const err of errors) {
    const path = (err.instancePath ?? '').split('/').filter(Boolean);
    if (path.length === 0 || err.keyword === 'boolean' || err.keyword === 'additionalProperties') continue;
    const field = path[0];
    if (data && !(field in data) && fields.includes(field)) continue;
    const rule = FIELD_RULES[field] ?? err.message ?? 'is invalid';
    add(field, `${field} ${rule}; got ${describeValue(data?.[field])}`);
  }
  if (sentences.length === 0) add(null, `${where} is invalid: ${errors.map((e) => e.message).join(', ')}`);
  return { message: sentences.join('. '), field: fields[0] ?? null };
}

export function buildApi(options: ApiOptions): ApiServer {
  const { lifecycle, connection, db, logger } = options;
  const temporalTimeoutMs = options.temporalTimeoutMs ?? 10_000;
  const limits: ApiLimits = { ...DEFAULT_API_LIMITS, ...options.limits };
  const allowedDomains = options.allowedEmailDomains ?? [];
  const callbackRules: CallbackPolicy = options.callbacks ?? { allowedHosts: [], allowHttp: false, signing: false };
  /** A request's callback URL, checked before anything is sent to Temporal; undefined when it names none. */
  const callbackOf = (url: string | undefined) => (url === undefined ? {} : { callbackUrl: assertCallbackUrl(url, callbackRules) });

  // Typed as fastify's own logger, so the instance's type is fastify's default one.
  const loggerInstance: FastifyBaseLogger = logger;
  const app = fastify({
    loggerInstance,
    // A client that sends its request slowly, or holds an idle connection, does not hold a socket forever.
    requestTimeout: limits.requestTimeoutMs,
    connectionTimeout: limits.connectionTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // find-my-way answers 404 for longer path parameters; a too-long id deserves a 400 that says so.
    routerOptions: { maxParamLength: 1_000 },
    bodyLimit: 64 * 1024,
  }).withTypeProvider<TypeBoxTypeProvider>();

  // TypeBox's compiler checks a body exactly as sent (no coercion, defaults or stripping of unknown
  // properties, which fastify's default Ajv setup would do) and converts only path and query strings.
  app.setValidatorCompiler(TypeBoxValidatorCompiler);

  // An empty body on a POST means "no options", whether or not the client set a JSON content type.
  const defaultJsonParser = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') {
      done(null, undefined);
      return;
    }
    void defaultJsonParser(request, text, done);
  });
  app.addHook('preValidation', (request, _reply, done) => {
    if (request.method === 'POST' && request.body === undefined) request.body = {};
    done();
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error.validation) {
      const context = error.validationContext ?? 'body';
      const { message, field } = formatValidationErrors(error.validation, context, request);
      return reply.code(400).send({ error: 'bad_request', message, ...(field ? { field } : {}) });
    }
    if (error instanceof PolicyError) {
      return reply.code(error.status).send({ error: error.status === 403 ? 'forbidden' : 'bad_request', message: error.message });
    }
    if (error instanceof SyntaxError || error.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
      return reply.code(400).send({ error: 'bad_request', message: 'body is not valid JSON' });
    }
    const kind = classifyFailure(error);
    if (kind === 'invalid_input') return reply.code(400).send({ error: 'bad_request', message: error.message });
    if (kind === 'resume_refused') return reply.code(409).send({ error: 'resume_refused', message: error.message });
    if (kind === 'refused') return reply.code(409).send({ error: 'refused', message: error.message });
    if (kind === 'unknown_message') return reply.code(404).send({ error: 'not_found', message: error.message });
    if (kind === 'temporal_unavailable') {
      request.log.warn({ err: error }, 'Temporal unavailable');
      return reply.code(503).send({ error: 'temporal_unavailable', message: 'the Temporal server cannot be reached; try again later' });
    }
    if (kind === 'temporal_timeout') {
      request.log.warn({ err: error }, 'Temporal call timed out');
      return reply.code(504).send({
        error: 'temporal_timeout',
        message: `Temporal did not answer within ${temporalTimeoutMs} ms (is an interaction-data worker running?)`,
      });
    }
    const status = typeof error.statusCode === 'number' ? error.statusCode : 500;
    if (status >= 400 && status < 500) {
      return reply.code(status).send({ error: CODE_BY_STATUS[status] ?? 'bad_request', message: error.message });
    }
    request.log.error({ err: error }, 'request failed');
    return reply.code(500).send({ error: 'internal_error', message: 'internal error; the server log has the details' });
  });

  // Before any route: the onRoute hook gives each route its access rule and refuses one without.
  registerAuth(app, { authenticator: options.auth, db });
  // Per principal, after authentication (preHandler), so one caller cannot use up another's allowance.
  void app.register(rateLimit, {
    hook: 'preHandler',
    max: limits.rateLimitMax,
    timeWindow: limits.rateLimitWindowMs,
    keyGenerator: (request) => request.principal?.id ?? request.ip,
    // An Error (not a plain object), so that every error handler on the way treats it as one.
    errorResponseBuilder: (_request, context) =>
      Object.assign(
        new Error(
          `rate limit of ${context.max} requests per ${context.after === '1 minute' ? 'minute' : 'window'} reached for this token; retry in ${context.after}`,
        ),
        {
          statusCode: 429,
        },
      ),
  });

  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: 'not_found', message: `no route ${request.method} ${request.url.split('?')[0]}` }),
  );

  if (options.openapi !== false) {
    void app.register(swagger, {
      openapi: {
        openapi: '3.0.3',
        info: {
          title: 'interaction-data',
          version: '1',
          description:
            'Availability, long-term storage and restore of campaign and Canvas interaction data. Each message is one ' +
            'Temporal workflow (`interaction-data:<kind>:<id>`); these endpoints signal and query it.',
        },
        tags: [{ name: 'messages' }, { name: 'operations' }],
        components: {
          securitySchemes: {
            [SECURITY_SCHEME]: {
              type: 'http',
              scheme: 'bearer',
              description:
                'An API token (`interaction-data tokens create`) or a JWT from the configured identity provider. Scopes: ' +
                SCOPES.map((s) => `\`${s}\` — ${SCOPE_DESCRIPTIONS[s]}`).join('; ') +
                '.',
            },
          },
        },
        security: [{ [SECURITY_SCHEME]: [] }],
      },
    });
  }

  /** Bounds every Temporal call made by fn, including each page of a listing. */
  const withTemporal = <T>(fn: () => Promise<T>): Promise<T> => connection.withDeadline(Date.now() + temporalTimeoutMs, fn);

  // Routes live in a plugin so that the OpenAPI generator, registered above, sees each of them.
  // eslint-disable-next-line @typescript-eslint/require-await -- fastify turns an async plugin's throw into a failed registration
  void app.register(async (api) => {
    const routes = api.withTypeProvider<TypeBoxTypeProvider>();

    routes.get(
      '/healthz',
      {
        config: { rateLimit: false },
        schema: { tags: ['operations'], summary: 'Liveness and dependencies', response: { 200: Health, 503: Health } },
      },
      async (request, reply) => {
        const problems: string[] = [];
        let temporal = true;
        try {
          await connection.withDeadline(Date.now() + HEALTH_TIMEOUT_MS, () => connection.workflowService.getSystemInfo({}));
        } catch (err) {
          temporal = false;
          problems.push(`Temporal: ${errorMessage(err)}`);
        }
        let database: boolean | undefined;
        if (db) {
          database = true;
          try {
            await withTimeout(db.raw('select 1'), HEALTH_TIMEOUT_MS, 'database did not answer');
          } catch (err) {
            database = false;
            problems.push(`database: ${errorMessage(err)}`);
          }
        }
        const ok = problems.length === 0;
        // Anyone may call this route, so the reasons (addresses, server messages) stay in the log.
        if (!ok) request.log.warn({ problems }, 'health check failed');
        return reply.code(ok ? 200 : 503).send({
          ok,
          temporal,
          ...(database === undefined ? {} : { database }),
          ...(ok
            ? {}
            : {
                message: `unavailable: ${[!temporal && 'Temporal', database === false && 'database'].filter(Boolean).join(' and ')}; the server log has the details`,
              }),
        });
      },
    );

    routes.post(
      '/v1/messages/:kind/:id/stop',
      {
        schema: {
          tags: ['messages'],
          summary: 'The message stopped: start its expiry clock (the actor answers with its deadline)',
          params: MessageParams,
          body: StopBody,
          response: { 200: ActorAnswer, 400: ErrorBody, 503: ErrorBody, 504: ErrorBody },
        },
      },
      async (request, reply) => {
        const { kind, id } = request.params;
        const { stoppedAt } = request.body;
        checkStoppedAt(request.principal as Principal, stoppedAt);
        const outcome = await withTemporal(() => lifecycle.stop(kind, id, stoppedAt === undefined ? {} : { stoppedAt }));
        return reply.code(200).send({ workflowId: lifecycleWorkflowId({ kind, id }), kind, id, ...outcome });
      },
    );

    routes.post(
      '/v1/messages/:kind/:id/resume',
      {
        schema: {
          tags: ['messages'],
          summary: 'The message is active again (refused once its data has expired, or its audiences filter on expired data)',
          params: MessageParams,
          body: ResumeBody,
          response: { 200: ActorAnswer, 400: ErrorBody, 409: ErrorBody, 503: ErrorBody, 504: ErrorBody },
        },
      },
      async (request, reply) => {
        const { kind, id } = request.params;
        // A message defined through the data plane is resumed there, so its definition and audiences
        // follow; they are marked active only once the actor accepted. The actor is asked in every case:
        // its state, not the definition's status, says whether it is stopped (a service may have
        // stopped it through this API without touching the definition).
        const workflowId = lifecycleWorkflowId({ kind, id });
        const defined = db && isDataPlaneLifecycle(lifecycle) ? await loadMessage(db, { kind, id }) : null;
        if (defined && db && isDataPlaneLifecycle(lifecycle)) {
          if (defined.status !== 'active') {
            // Guards, the actor's accepting Update, then the definition: a refusal leaves it stopped.
            await withTemporal(() => resumeMessages(db, lifecycle, kind, [defined.id]));
            return reply.code(200).send({ workflowId, kind, id, changed: true, state: 'active' });
          }
          await guardResume(db, [defined], kind);
        }
        const outcome = await withTemporal(() => lifecycle.resume(kind, id));
        return reply.code(200).send({ workflowId, kind, id, ...outcome });
      },
    );

    routes.post(
      '/v1/messages/:kind/:id/restore',
      {
        schema: {
          tags: ['messages'],
          summary: 'Bring expired interaction data back; the requester is e-mailed when done',
          params: MessageParams,
          body: RestoreBody,
          response: { 200: RestoreResult, 202: RestoreResult, 400: ErrorBody, 404: ErrorBody, 503: ErrorBody, 504: ErrorBody },
        },
      },
      async (request, reply) => {
        const { kind, id } = request.params;
        const { requestId } = request.body;
        const requestedBy = restoreRecipient(request.principal as Principal, request.body.requestedBy, allowedDomains);
        const callback = callbackOf(request.body.callbackUrl);
        // An id no one ever defined, stopped or sent events for gets no actor at all.
        if (db && !(await isKnownMessage(db, { kind, id }))) {
          return reply
            .code(404)
            .send({ error: 'not_found', message: `no ${kind} ${JSON.stringify(id)}: it was never defined, stopped or sent events for` });
        }
        const result = await withTemporal(() =>
          lifecycle.restore(kind, id, requestId === undefined ? { requestedBy, ...callback } : { requestedBy, requestId, ...callback }),
        );
        const workflowId = lifecycleWorkflowId({ kind, id });
        if (!result.accepted) {
          const status = await withTemporal(() => lifecycle.status(kind, id));
          return reply.code(200).send({
            workflowId,
            kind,
            id,
            requestId: result.requestId,
            accepted: false,
            state: result.state,
            message: ALREADY_AVAILABLE_MESSAGE,
            status,
          });
        }
        return reply.code(202).send({ workflowId, kind, id, requestId: result.requestId, accepted: true, state: result.state });
      },
    );

    routes.post(
      '/v1/messages/:kind/:id/retry',
      {
        schema: {
          tags: ['operations'],
          summary: 'After the cause of a problem is fixed: run the step that failed again',
          params: MessageParams,
          body: ResumeBody,
          response: { 200: RetryResult, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody, 503: ErrorBody, 504: ErrorBody },
        },
      },
      async (request, reply) => {
        const { kind, id } = request.params;
        const workflowId = lifecycleWorkflowId({ kind, id });
        try {
          const { retried } = await withTemporal(() => lifecycle.retry(kind, id));
          return reply.code(200).send({ workflowId, kind, id, retried });
        } catch (err) {
          if (err instanceof WorkflowNotFoundError)
            return reply.code(404).send({ error: 'not_found', message: `no running actor ${workflowId}` });
          throw err;
        }
      },
    );

    routes.get(
      '/v1/messages/:kind/:id',
      {
        schema: {
          tags: ['messages'],
          summary: "The message's lifecycle status",
          params: MessageParams,
          response: { 200: LifecycleStatusSchema, 400: ErrorBody, 404: ErrorBody, 503: ErrorBody, 504: ErrorBody },
        },
      },
      async (request, reply) => {
        const { kind, id } = request.params;
        const status = await withTemporal(() => lifecycle.status(kind, id));
        if (status === null) {
          return reply.code(404).send({
            error: 'not_found',
            message: `${kind} ${id} has no interaction-data lifecycle yet: it has never been stopped, resumed or restored`,
          });
        }
        return reply.code(200).send(status);
      },
    );

    routes.get(
      '/v1/messages',
      {
        schema: {
          tags: ['messages'],
          summary: 'Messages by state, tag and kind (from Temporal visibility, eventually consistent)',
          querystring: ListQuery,
          response: { 200: ListResult, 400: ErrorBody, 503: ErrorBody, 504: ErrorBody },
        },
      },
      async (request, reply) => {
        const { state, tag, kind } = request.query;
        const limit = request.query.limit ?? LIST_LIMIT_DEFAULT;
        const { items, truncated } = await withTemporal(async () => {
          const found = [];
          for await (const item of lifecycle.list({ state, tag, kind })) {
            if (found.length === limit) return { items: found, truncated: true };
            found.push(item);
          }
          return { items: found, truncated: false };
        });
        return reply.code(200).send({ items, count: items.length, limit, truncated });
      },
    );

    if (db) registerTokenRoutes(routes, db);
    if (db) registerReportRoutes(routes, db);
    if (db) {
      // Resuming wakes the held actors through the lifecycle client; a stand-in without it leaves them to their recheck.
      const signals = isDataPlaneLifecycle(lifecycle) ? lifecycle : null;
      registerArchivingRoutes(routes, db, signals ? (ref) => signals.referencesChanged(ref.kind, ref.id) : null);
    }
    if (db) countStatesFrom(db);
    routes.get('/metrics', { schema: { hide: true } }, async (_request, reply) =>
      reply
        .code(200)
        .header('content-type', METRICS_CONTENT_TYPE)
        .send(await metricsText()),
    );
    if (options.bulk)
      registerBulkRoutes(routes, {
        bulk: options.bulk,
        connection,
        temporalTimeoutMs,
        db,
        allowedDomains,
        callbacks: callbackRules,
        limits,
      });
    if (options.erasures) registerPrivacyRoutes(routes, { erasures: options.erasures, connection, temporalTimeoutMs });

    if (options.openapi !== false) {
      routes.get('/openapi.json', { schema: { hide: true } }, () => app.swagger());
    }
  });

  // The interaction data plane needs the database and the full lifecycle client.
  if (db && isDataPlaneLifecycle(lifecycle))
    void app.register(dataPlaneRoutes, {
      db,
      lifecycle,
      connection,
      temporalTimeoutMs,
      usersExportTimeLimitMs: options.usersExportTimeLimitMs,
      archiveStores: options.archiveStores,
    });

  return app;
}

function withTimeout<T>(promise: PromiseLike<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([Promise.resolve(promise), timeout]).finally(() => clearTimeout(timer));
}
