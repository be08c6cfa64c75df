/**
 * A user's erasure over HTTP: DELETE /v1/users/{id} starts it (202, or 200 when the request already
 * existed) and GET /v1/privacy/erasures/{request} follows it. The access export is a data-plane route
 * (GET /v1/users/{id}/interactions).
 */
import { Type } from '@fastify/type-provider-typebox';
import type { Connection } from '@temporalio/client';
import type { ErasureClient } from '../client/erasureClient';
import { USER_ID_PATTERN } from '../dataplane/ingest/events';
import { ErasureConflictError } from '../privacy/erasureRecords';
import { REQUEST_ID_PATTERN } from '../shared/validation';
import type { ApiServer } from './app';
import { ErrorBody } from './schemas';

/** The part of ErasureClient the API uses. */
export type ErasureApi = Pick<ErasureClient, 'start' | 'get'>;

const NullableString = Type.Union([Type.String(), Type.Null()]);

export const ErasureStartedSchema = Type.Object({
  requestId: Type.String(),
  workflowId: Type.String(),
  attached: Type.Boolean({ description: "The user's erasure was already running (or this request id named it): nothing new was started." }),
  erasedThrough: Type.String({ description: "The user's events that occurred up to this instant are erased and refused from now on." }),
  statusUrl: Type.String(),
});

export const ErasureViewSchema = Type.Object({
  requestId: Type.String(),
  userId: Type.Union([Type.String(), Type.Null()], { description: 'Null once done: the request keeps only a hash of the id.' }),
  status: Type.String({ description: 'running, done, or failed (some message could not be erased; see error).' }),
  requestedBy: Type.String(),
  requestedAt: Type.String(),
  erasedThrough: Type.String(),
  completedAt: NullableString,
  messages: Type.Object({ total: Type.Integer(), done: Type.Integer(), failed: Type.Integer() }),
  hotRows: Type.Integer(),
  archivedRows: Type.Integer(),
  chunksRead: Type.Integer(),
  chunksRewritten: Type.Integer(),
  bytesRewritten: Type.Integer(),
  error: NullableString,
});

export function registerPrivacyRoutes(
  routes: ApiServer,
  options: { erasures: ErasureApi; connection: Connection; temporalTimeoutMs: number },
): void {
  const { erasures, connection, temporalTimeoutMs } = options;
  routes.delete(
    '/v1/users/:id',
    {
      schema: {
        tags: ['privacy'],
        summary:
          "Erase a user (GDPR Art. 17): their interaction rows, hot and archived, their summaries and their messages' pairs; " +
          'from the answer on, their events up to now are refused at ingestion',
        params: Type.Object({ id: Type.String({ pattern: USER_ID_PATTERN }) }, { additionalProperties: false }),
        querystring: Type.Object(
          {
            requestId: Type.Optional(
              Type.String({ pattern: REQUEST_ID_PATTERN, description: 'Names the request; sending it again attaches.' }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 200: ErasureStartedSchema, 202: ErasureStartedSchema, 400: ErrorBody, 409: ErrorBody, 503: ErrorBody, 504: ErrorBody },
      },
    },
    async (request, reply) => {
      const principal = request.principal;
      const requestedBy = principal?.email ?? principal?.name ?? '';
      try {
        const started = await connection.withDeadline(Date.now() + temporalTimeoutMs, () =>
          erasures.start({
            userId: request.params.id,
            requestedBy,
            ...(request.query.requestId ? { requestId: request.query.requestId } : {}),
          }),
        );
        return reply
          .code(started.attached ? 200 : 202)
          .send({ ...started, statusUrl: `/v1/privacy/erasures/${encodeURIComponent(started.requestId)}` });
      } catch (err) {
        if (err instanceof ErasureConflictError)
          return reply.code(409).send({ error: 'conflict', message: err.message, field: 'requestId' });
        throw err;
      }
    },
  );

  routes.get(
    '/v1/privacy/erasures/:request',
    {
      schema: {
        tags: ['privacy'],
        summary: "An erasure's progress: messages done, rows erased hot and archived, chunks read and rewritten",
        params: Type.Object({ request: Type.String({ pattern: REQUEST_ID_PATTERN }) }, { additionalProperties: false }),
        response: { 200: ErasureViewSchema, 404: ErrorBody },
      },
    },
    async (request, reply) => {
      const view = await erasures.get(request.params.request);
      if (!view) return reply.code(404).send({ error: 'not_found', message: `no erasure ${request.params.request}` });
      return reply.code(200).send(view);
    },
  );
}
