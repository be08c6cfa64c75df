/**
 * HTTP routes of the interaction data plane: message definitions, ingestion, audiences, retargeting
 * evaluation, user profiles and export, the User Data CSV and analytics. Registered by buildApi when
 * the API has a database.
 */
import { eventsIngested } from '../metrics/metrics';
import { requestPart } from './requestPart';
import type { FastifyError, FastifyPluginAsync, FastifySchemaCompiler } from 'fastify';
import { TypeBoxValidatorCompiler, type Static, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Connection } from '@temporalio/client';
import { usersExportTimeLimit } from '../config';
import type { Db } from '../db/knex';
import { activateAudiences, getAudience, putAudience } from '../dataplane/audiences';
import { messageAnalytics } from '../dataplane/analytics';
import { DataPlaneError, badRequest, notFound } from '../dataplane/errors';
import { InvalidFilterError, parseFilter } from '../dataplane/filters/definitions';
import { evaluateFilter } from '../dataplane/filters/evaluate';
import { ingestEvents } from '../dataplane/ingest/ingest';
import { validateBatch } from '../dataplane/ingest/validateBatch';
import type { DataPlaneLifecycle } from '../dataplane/lifecyclePort';
import { createMessage, resumeMessages, updateMessage } from '../dataplane/messageService';
import { loadMessage } from '../dataplane/messages';
import { MAX_BATCH_BYTES, MAX_BATCH_EVENTS } from '../dataplane/model';
import { ExportTimeLimitError, openUserDataCsv } from '../dataplane/userDataCsv';
import { EXPORT_FIELDS, exportUsers, userProfile } from '../dataplane/users';
import { mysqlOnly } from '../archive/mysqlStore';
import { StoreNotConfiguredError, type ArchiveStores } from '../archive/store';
import { assertUserStoresReadable, emptyAccessStats, userInteractions } from '../privacy/userInteractions';
import { userInteractionsStream } from '../privacy/userInteractionsFormat';
import {
  ActivateAudiencesBody,
  ActivatedAudiences,
  AnalyticsResult,
  AudienceBody,
  AudienceParams,
  AudienceResource,
  CreateMessageBody,
  ErrorBody,
  EvaluateBody,
  EvaluateResult,
  ExportBody,
  ExportResult,
  IngestBody,
  IngestEnvelope,
  IngestResult,
  MessageParams,
  MessageResource,
  ResumeMessagesBody,
  SavedAudience,
  SavedMessage,
  SavedMessages,
  UpdateMessageBody,
  UserInteractionsQuery,
  UserParams,
  UserProfile,
} from './dataPlaneSchemas';

export interface DataPlaneOptions {
  db: Db;
  lifecycle: DataPlaneLifecycle;
  /** When given, every call to Temporal gets a deadline of temporalTimeoutMs. */
  connection?: Connection;
  temporalTimeoutMs?: number;
  /** How long a User Data CSV export may run; `USERS_EXPORT_TIME_LIMIT` when not given. */
  usersExportTimeLimitMs?: number;
  /** Where a user's archived rows are read; the MySQL store alone when not given. */
  archiveStores?: ArchiveStores;
}

interface SchemaError {
  instancePath?: string;
  keyword?: string;
  message?: string;
  params?: { missingProperty?: string; [key: string]: unknown };
}

/** `/filters/0/type` → `filters[0].type`: nested fields named the way a client would write them. */
function fieldPath(pointer: string): string {
  return pointer
    .split('/')
    .filter(Boolean)
    .reduce((acc, part) => (/^\d+$/.test(part) ? `${acc}[${part}]` : acc ? `${acc}.${part}` : part), '');
}

/** The value at a JSON pointer of the request part, quoted for a message (shortened when long). */
function valueAt(data: unknown, pointer: string): string {
  let v: unknown = data;
  for (const part of pointer.split('/').filter(Boolean))
    v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[part] : undefined;
  if (v === undefined) return 'nothing';
  // JSON has no spelling for a function or a symbol; String has.
  const text = typeof v === 'function' || typeof v === 'symbol' ? String(v) : JSON.stringify(v);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

export function formatSchemaErrors(
  errors: readonly SchemaError[],
  where: string,
  data?: unknown,
): { message: string; field: string | null } {
  const sentences: string[] = [];
  const fields: string[] = [];
  for (const err of errors) {
    const path = fieldPath(err.instancePath ?? '');
    let field = path;
    let sentence: string;
    if (err.keyword === 'additionalProperties') {
      const extra = (err.params?.additionalProperties as string[] | undefined) ?? [];
      field = [path, extra[0]].filter(Boolean).join('.');
      sentence = `unknown ${where} property ${extra.map((n) => JSON.stringify(n)).join(', ')}${path ? ` in ${path}` : ''}`;
    } else if (err.keyword === 'required') {
      const missing = (err.params?.requiredProperties as string[] | undefined) ?? [String(err.params?.missingProperty ?? '')];
      field = [path, missing[0]].filter(Boolean).join('.');
      sentence = `${missing.map((m) => [path, m].filter(Boolean).join('.')).join(', ')} ${missing.length > 1 ? 'are' : 'is'} required`;
    } else if (err.keyword === 'boolean') {
      continue; // the additionalProperties error above already says it
    } else if (err.keyword === 'enum' && Array.isArray(err.params?.allowedValues)) {
      sentence = `${path || where} must be one of ${(err.params.allowedValues as unknown[]).join(', ')}; got ${valueAt(data, err.instancePath ?? '')}`;
    } else {
      sentence = `${path || where} ${err.message ?? 'is invalid'}; got ${valueAt(data, err.instancePath ?? '')}`;
    }
    if (fields.includes(field)) continue;
    fields.push(field);
    sentences.push(sentence);
  }
  if (sentences.length === 0) sentences.push(`${where} is invalid`);
  return { message: sentences.join('. '), field: fields[0] || null };
}

/** The ingestion route checks the envelope only; events are checked one by one so each bad one is named. */
const ingestValidator: FastifySchemaCompiler<unknown> = (route) =>
  TypeBoxValidatorCompiler({ ...route, schema: route.httpPart === 'body' ? IngestEnvelope : route.schema } as Parameters<
    typeof TypeBoxValidatorCompiler
  >[0]);

// eslint-disable-next-line @typescript-eslint/require-await -- fastify turns an async plugin's throw into a failed registration
export const dataPlaneRoutes: FastifyPluginAsync<DataPlaneOptions> = async (app, options) => {
  const { db, connection } = options;
  const archiveStores = options.archiveStores ?? mysqlOnly();
  const timeoutMs = options.temporalTimeoutMs ?? 10_000;
  const exportTimeLimitMs = options.usersExportTimeLimitMs ?? usersExportTimeLimit().milliseconds;
  const bound =
    <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
    (...args: A): Promise<R> =>
      connection ? connection.withDeadline(Date.now() + timeoutMs, () => fn(...args)) : fn(...args);
  const lifecycle: DataPlaneLifecycle = {
    stop: bound(options.lifecycle.stop.bind(options.lifecycle)),
    resume: bound(options.lifecycle.resume.bind(options.lifecycle)),
    referencesChanged: bound(options.lifecycle.referencesChanged.bind(options.lifecycle)),
    updateDetails: bound(options.lifecycle.updateDetails.bind(options.lifecycle)),
  };

  // Plain JSON.parse for these routes: ingestion parses up to 2 MB per request, and the default parser's
  // extra scan for prototype keys is a measurable part of that. Nothing here merges request objects
  // into others, and every body is checked against a closed schema (unknown keys are refused).
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') {
      done(null, undefined);
      return;
    }
    try {
      done(null, JSON.parse(text) as unknown);
    } catch (err) {
      done(err as Error, undefined);
    }
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof DataPlaneError) {
      // A file's headers may already be set (a CSV export stopped before its first byte): this is JSON.
      reply.removeHeader('content-disposition');
      return reply
        .code(error.statusCode)
        .type('application/json; charset=utf-8')
        .send({ error: error.code, message: error.message, ...error.details });
    }
    if (error.validation) {
      const { input, where } = requestPart(request, error.validationContext ?? 'body');
      const { message, field } = formatSchemaErrors(error.validation, where, input);
      return reply.code(400).send({ error: 'bad_request', message, ...(field ? { field } : {}) });
    }
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.code(413).send({
        error: 'payload_too_large',
        message: `the request body is larger than ${request.routeOptions.bodyLimit ?? 'the'} bytes allowed here${request.url.startsWith('/v1/interactions') ? `: send at most ${MAX_BATCH_EVENTS} events per batch` : ''}`,
      });
    }
    throw error; // everything else: the API's own handler (Temporal failures, 500s)
  });

  const routes = app.withTypeProvider<TypeBoxTypeProvider>();
  const tags = (t: string) => [t];

  routes.post(
    '/v1/messages',
    {
      schema: {
        tags: tags('data plane: messages'),
        summary: 'Create (launch) a campaign or Canvas',
        body: CreateMessageBody,
        response: { 201: SavedMessage, 400: ErrorBody, 409: ErrorBody },
      },
    },
    async (request, reply) => {
      const { kind, id, ...rest } = request.body;
      const saved = await createMessage(db, lifecycle, { kind, id }, rest);
      return reply.code(201).send(saved);
    },
  );

  routes.put(
    '/v1/messages/:kind/:id',
    {
      schema: {
        tags: tags('data plane: messages'),
        summary: 'Update a campaign or Canvas; status changes stop or resume its actor (resume guarded by rule 9)',
        params: MessageParams,
        body: UpdateMessageBody,
        response: { 200: SavedMessage, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody },
      },
    },
    async (request, reply) => {
      const saved = await updateMessage(db, lifecycle, request.params, request.body);
      return reply.code(200).send(saved);
    },
  );

  routes.get(
    '/v1/messages/:kind/:id/definition',
    {
      schema: {
        tags: tags('data plane: messages'),
        summary: 'The campaign or Canvas as defined (setup is unaffected by expiry)',
        params: MessageParams,
        response: { 200: MessageResource, 400: ErrorBody, 404: ErrorBody },
      },
    },
    async (request, reply) => {
      const message = await loadMessage(db, request.params);
      if (!message) throw notFound(`no ${request.params.kind} ${JSON.stringify(request.params.id)}`);
      return reply.code(200).send(message);
    },
  );

  routes.post(
    '/v1/messages/resume',
    {
      schema: {
        tags: tags('data plane: messages'),
        summary: 'Resume several campaigns or Canvases at once: all or none (rule 9)',
        body: ResumeMessagesBody,
        response: { 200: SavedMessages, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody },
      },
    },
    async (request, reply) => {
      const saved = await resumeMessages(db, lifecycle, request.body.kind, request.body.ids);
      return reply.code(200).send({ messages: saved });
    },
  );

  routes.post(
    '/v1/interactions',
    {
      bodyLimit: MAX_BATCH_BYTES,
      validatorCompiler: ingestValidator,
      schema: {
        tags: tags('data plane: ingestion'),
        summary: `Ingest a batch of up to ${MAX_BATCH_EVENTS} interaction events (all or nothing; retries are stored once)`,
        body: IngestBody,
        response: { 200: IngestResult, 400: ErrorBody, 413: ErrorBody },
      },
    },
    async (request, reply) => {
      const events = (request.body as { events: unknown[] }).events;
      if (events.length === 0) throw badRequest('events must hold at least one event', { field: 'events' });
      if (events.length > MAX_BATCH_EVENTS) {
        return reply.code(413).send({
          error: 'payload_too_large',
          message: `a batch holds at most ${MAX_BATCH_EVENTS} events; got ${events.length}. Split it into several batches; nothing was stored.`,
          field: 'events',
        });
      }
      const valid = await validateBatch(db, events);
      const result = await ingestEvents(db, valid, {
        onPromotionError: (err, ref) =>
          request.log.warn(
            { err, messageRef: `${ref.kind}:${ref.id}` },
            'moving a message to a hot table of its own failed; it is tried again later',
          ),
      });
      eventsIngested.inc({ outcome: 'stored' }, result.stored);
      eventsIngested.inc({ outcome: 'duplicate' }, result.duplicates);
      eventsIngested.inc({ outcome: 'erased' }, result.erased);
      return reply.code(200).send(result);
    },
  );

  routes.put(
    '/v1/audiences/:id',
    {
      schema: {
        tags: tags('data plane: audiences'),
        summary: 'Create or replace an audience (filters, segments, active); reference changes signal the actors',
        params: AudienceParams,
        body: AudienceBody,
        response: { 200: SavedAudience, 400: ErrorBody, 409: ErrorBody },
      },
    },
    async (request, reply) => {
      const saved = await putAudience(db, lifecycle, request.params.id, request.body);
      return reply.code(200).send(saved);
    },
  );

  routes.get(
    '/v1/audiences/:id',
    {
      schema: {
        tags: tags('data plane: audiences'),
        summary: 'An audience',
        params: AudienceParams,
        response: { 200: AudienceResource, 404: ErrorBody },
      },
    },
    async (request, reply) => reply.code(200).send(await getAudience(db, request.params.id)),
  );

  routes.post(
    '/v1/audiences/activate',
    {
      schema: {
        tags: tags('data plane: audiences'),
        summary: 'Activate audiences of one type (resume campaigns or Canvases, unarchive Content Cards): all or none (rule 9)',
        body: ActivateAudiencesBody,
        response: { 200: ActivatedAudiences, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody },
      },
    },
    async (request, reply) => reply.code(200).send(await activateAudiences(db, lifecycle, request.body.ids)),
  );

  routes.post(
    '/v1/retargeting/evaluate',
    {
      schema: {
        tags: tags('data plane: retargeting'),
        summary: 'Users matching one filter, a page at a time, in user id order (expired data excluded)',
        body: EvaluateBody,
        response: { 200: EvaluateResult, 400: ErrorBody, 409: ErrorBody },
      },
    },
    async (request, reply) => {
      let filter;
      try {
        filter = parseFilter(request.body.filter);
      } catch (err) {
        if (err instanceof InvalidFilterError) throw badRequest(err.problems.map((p) => `filter: ${p}`).join('. '), { field: 'filter' });
        throw err;
      }
      const page = await evaluateFilter(db, filter, { cursor: request.body.cursor, limit: request.body.limit });
      return reply.code(200).send(page);
    },
  );

  routes.get(
    '/v1/users/:id',
    {
      schema: {
        tags: tags('data plane: users'),
        summary: 'User profile: summaries, Campaigns Received and Canvas Messages Received (expired messages left out)',
        params: UserParams,
        response: { 200: UserProfile, 400: ErrorBody, 404: ErrorBody },
      },
    },
    async (request, reply) => {
      const profile = await userProfile(db, request.params.id);
      if (!profile) throw notFound(`no user ${JSON.stringify(request.params.id)}`);
      return reply.code(200).send(profile);
    },
  );

  routes.post(
    '/v1/users/export',
    {
      schema: {
        tags: tags('data plane: users'),
        summary: 'Export up to 50 users by external id (campaigns_received, canvases_received; expired messages left out)',
        body: ExportBody,
        response: { 200: ExportResult, 400: ErrorBody },
      },
    },
    async (request, reply) => {
      const result = await exportUsers(db, request.body.external_ids, request.body.fields_to_export ?? EXPORT_FIELDS);
      return reply.code(200).send({ ...result, message: 'success' });
    },
  );

  // Registered without the type provider: the 200 body is a stream, not a schema-typed value.
  app.get<{ Params: Static<typeof MessageParams> }>(
    '/v1/messages/:kind/:id/user-data.csv',
    {
      schema: {
        tags: tags('data plane: exports'),
        summary:
          'User Data CSV of a campaign or Canvas, streamed (409 with how to restore when its data has expired); ' +
          'cut off at USERS_EXPORT_TIME_LIMIT: a 503 before the first byte, a connection closed mid-file after it',
        params: MessageParams,
        produces: ['text/csv'],
        response: {
          200: { type: 'string', description: 'text/csv, one line per user' },
          400: ErrorBody,
          404: ErrorBody,
          409: ErrorBody,
          503: ErrorBody,
        },
      },
    },
    async (request, reply) => {
      const csv = await openUserDataCsv(db, request.params, { timeLimitMs: exportTimeLimitMs });
      csv.stream.on('error', (err) => {
        if (err instanceof ExportTimeLimitError)
          request.log.warn({ timeLimitMs: exportTimeLimitMs, ref: request.params }, 'User Data export cut off at its time limit');
        else request.log.error({ err }, 'User Data export failed while streaming');
      });
      return reply
        .code(200)
        .header('content-type', 'text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="${csv.filename}"`)
        .send(csv.stream);
    },
  );

  // Registered without the type provider: the 200 body is a stream, not a schema-typed value.
  app.get<{ Params: Static<typeof UserParams>; Querystring: Static<typeof UserInteractionsQuery> }>(
    '/v1/users/:id/interactions',
    {
      schema: {
        tags: tags('data plane: users'),
        summary:
          "Every interaction row of a user, hot and archived, each marked with where it is kept (a data subject's access request); " +
          'archived rows are read from the chunks that may hold the user, nothing is restored. NDJSON, or CSV with format=csv; ' +
          '503 before the first byte when a chunk is in an archive store this API has no settings for',
        params: UserParams,
        querystring: UserInteractionsQuery,
        produces: ['application/x-ndjson', 'text/csv'],
        response: {
          200: { type: 'string', description: 'one row per line: source (hot or archived), generation, and the row' },
          400: ErrorBody,
          404: ErrorBody,
          503: ErrorBody,
        },
      },
    },
    async (request, reply) => {
      const userId = request.params.id;
      const known = await db('user_messages').where({ user_id: userId }).first<{ user_id: string } | undefined>('user_id');
      if (!known) throw notFound(`no interaction rows of user ${JSON.stringify(userId)}`);
      try {
        await assertUserStoresReadable(db, archiveStores, userId);
      } catch (err) {
        if (err instanceof StoreNotConfiguredError) throw new DataPlaneError(503, 'archive_store_not_configured', err.message);
        throw err;
      }
      const stats = emptyAccessStats();
      const stream = userInteractionsStream(userInteractions(db, archiveStores, userId, stats), request.query.format ?? 'ndjson');
      stream.on('error', (err) => request.log.error({ err }, "a user's interaction export failed while streaming"));
      stream.on('end', () => request.log.info({ stats }, "a user's interaction rows exported"));
      return reply
        .code(200)
        .header('content-type', request.query.format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8')
        .send(stream);
    },
  );

  routes.get(
    '/v1/messages/:kind/:id/analytics',
    {
      schema: {
        tags: tags('data plane: analytics'),
        summary: 'Message analytics (aggregates kept apart from the per-user rows: unaffected by expiry)',
        params: MessageParams,
        response: { 200: AnalyticsResult, 400: ErrorBody, 404: ErrorBody },
      },
    },
    async (request, reply) => reply.code(200).send(await messageAnalytics(db, request.params)),
  );
};
