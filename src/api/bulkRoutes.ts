/**
 * Bulk restores over HTTP: POST /v1/restores (a tag, or a list of `<kind>:<id>`) and
 * GET /v1/restores/{request}. The request id is derived from the request unless one is named, so a POST
 * sent twice reaches the same bulk-restore workflow: 202 when it started, 200 when it already existed.
 */
import type { Connection } from '@temporalio/client';
import { Type, type Static } from '@fastify/type-provider-typebox';
import type { Knex } from 'knex';
import {
  BulkRequestConflictError,
  PREVIEW_LIMIT_DEFAULT,
  TooManyBulkRestoresError,
  type BulkRestoreClient,
} from '../client/bulkRestoreClient';
import { restoreRecipient } from '../auth/policy';
import type { Principal } from '../auth/scopes';
import { countTagged } from '../bulk/store';
import type { ApiLimits } from './limits';
import { parseBulkRequestId } from '../bulk/request';
import { MAX_BULK_CONCURRENCY, MAX_BULK_IDS } from '../bulk/types';
import { MESSAGE_KINDS, type MessageRef } from '../shared/types';
import { EMAIL_PATTERN, InvalidInputError, REQUEST_ID_PATTERN, TAG_PATTERN } from '../shared/validation';
import { InvalidMessageRefError, parseMessageRef } from '../shared/workflowId';
import type { ApiServer } from './app';
import { CallbackUrl, ErrorBody } from './schemas';
import { assertCallbackUrl, type CallbackPolicy } from '../callbacks/callbackUrl';

/** The part of BulkRestoreClient the API uses; tests may pass a stand-in with the same shape. */
export type BulkRestoreApi = Pick<BulkRestoreClient, 'start' | 'get' | 'preview'>;

export interface BulkRoutesOptions {
  bulk: BulkRestoreApi;
  connection: Connection;
  temporalTimeoutMs: number;
  /** Counts a tag's messages before a request starts (the cap on messages per request). */
  db?: Knex;
  allowedDomains: readonly string[];
  callbacks: CallbackPolicy;
  limits: Pick<ApiLimits, 'maxRunningBulkRestores' | 'maxBulkMessages' | 'bulkRetryAfterSeconds'>;
}

const Kind = Type.Enum([...MESSAGE_KINDS], { description: 'Message kind.' });

export const BulkRestoreBody = Type.Object(
  {
    requestedBy: Type.Optional(
      Type.String({
        pattern: EMAIL_PATTERN,
        maxLength: 254,
        description: "Receives the one summary e-mail: by default the caller's own address; another only in EMAIL_ALLOWED_DOMAINS.",
      }),
    ),
    tag: Type.Optional(Type.String({ pattern: TAG_PATTERN, description: 'Every expired message with this tag.' })),
    kind: Type.Optional({ ...Kind, description: 'With tag: only campaigns or only Canvases (default both).' }),
    ids: Type.Optional(
      Type.Array(Type.String({ maxLength: 100 }), {
        minItems: 1,
        maxItems: MAX_BULK_IDS,
        description: 'Messages as `<kind>:<id>`, e.g. `campaign:6f1c2b`; instead of tag.',
      }),
    ),
    callbackUrl: Type.Optional(CallbackUrl),
    requestId: Type.Optional(
      Type.String({
        pattern: REQUEST_ID_PATTERN,
        description: 'Names the request (default: derived from the request, so a repeat attaches to it).',
      }),
    ),
    concurrency: Type.Optional(
      Type.Integer({ minimum: 1, maximum: MAX_BULK_CONCURRENCY, description: 'Messages restored at the same time (default 20).' }),
    ),
    dryRun: Type.Optional(Type.Boolean({ description: 'Only report what would be restored; nothing is started.' })),
  },
  { additionalProperties: false },
);
export type BulkRestoreBody = Static<typeof BulkRestoreBody>;

export const BulkRequestParams = Type.Object(
  { request: Type.String({ maxLength: 200, description: 'Request id (or the bulk-restore workflow ID).' }) },
  { additionalProperties: false },
);

const Selection = Type.Object({}, { additionalProperties: true, description: '{ by: "tag", tag, kinds } or { by: "ids", count }.' });
const Failure = Type.Object({ kind: Kind, id: Type.String(), reason: Type.String() });
const NullableString = Type.Union([Type.String(), Type.Null()]);

export const BulkProgressSchema = Type.Object(
  {
    requestId: Type.String(),
    workflowId: Type.String(),
    selection: Selection,
    requestedBy: Type.String(),
    phase: Type.String({ description: 'registering, restoring, notifying or completed.' }),
    total: Type.Integer(),
    done: Type.Integer(),
    restored: Type.Integer(),
    alreadyAvailable: Type.Integer(),
    failed: Type.Integer(),
    rowsRestored: Type.Integer(),
    inFlight: Type.Array(Type.String()),
    failures: Type.Array(Failure, { description: 'The first failures; `failed` counts them all.' }),
    concurrency: Type.Integer(),
    startedAt: Type.String(),
    finishedAt: NullableString,
    summarySentAt: NullableString,
    runs: Type.Integer({ description: 'Workflow runs so far (1 + continue-as-new).' }),
  },
  { additionalProperties: true },
);

export const BulkStarted = Type.Object({
  requestId: Type.String(),
  workflowId: Type.String(),
  attached: Type.Boolean({ description: 'The request already existed: nothing new was started.' }),
  status: Type.String({ description: "Temporal's status of the request's workflow." }),
  selection: Selection,
  requestedBy: Type.String(),
  statusUrl: Type.String(),
});

export const BulkView = Type.Object({
  requestId: Type.String(),
  workflowId: Type.String(),
  status: Type.String({ description: 'RUNNING, COMPLETED, FAILED, TERMINATED, CANCELLED or TIMED_OUT.' }),
  startedAt: Type.String(),
  closedAt: NullableString,
  progress: Type.Union([BulkProgressSchema, Type.Null()]),
  problem: NullableString,
});

const PreviewItem = Type.Object({ kind: Kind, id: Type.String(), name: NullableString, state: NullableString, action: Type.String() });
export const BulkPreviewSchema = Type.Object({
  selection: Selection,
  total: Type.Integer(),
  toRestore: Type.Integer(),
  alreadyAvailable: Type.Integer(),
  unknown: Type.Integer(),
  items: Type.Array(PreviewItem),
  truncated: Type.Boolean(),
});

/** `<kind>:<id>` strings to references, naming every bad one (by position) in one 400. */
function parseIds(ids: readonly string[]): MessageRef[] {
  const problems: string[] = [];
  const refs: MessageRef[] = [];
  ids.forEach((text, i) => {
    try {
      refs.push(parseMessageRef(text));
    } catch (err) {
      if (!(err instanceof InvalidMessageRefError)) throw err;
      problems.push(`ids[${i}]: ${err.message}`);
    }
  });
  if (problems.length > 0) {
    throw new InvalidInputError(
      problems.length > 5 ? `${problems.slice(0, 5).join('; ')}; and ${problems.length - 5} more` : problems.join('; '),
    );
  }
  return refs;
}

export function registerBulkRoutes(routes: ApiServer, options: BulkRoutesOptions): void {
  const { bulk, connection, temporalTimeoutMs, db, allowedDomains, callbacks, limits } = options;
  const withTemporal = <T>(fn: () => Promise<T>, ms = temporalTimeoutMs): Promise<T> => connection.withDeadline(Date.now() + ms, fn);

  routes.post(
    '/v1/restores',
    {
      // 10,000 ids of up to 70 characters do not fit the API's default body limit.
      bodyLimit: 1024 * 1024,
      schema: {
        tags: ['restores'],
        summary: 'Restore several messages, or every expired campaign and/or Canvas with a tag; one summary e-mail',
        body: BulkRestoreBody,
        response: {
          200: Type.Union([BulkStarted, BulkPreviewSchema]),
          202: BulkStarted,
          400: ErrorBody,
          409: ErrorBody,
          429: ErrorBody,
          503: ErrorBody,
          504: ErrorBody,
        },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const refs = body.ids === undefined ? undefined : parseIds(body.ids);
      if (db && body.tag !== undefined && !body.dryRun) {
        const kinds = body.kind !== undefined ? [body.kind] : [...MESSAGE_KINDS];
        const tagged = await countTagged(db, body.tag, kinds);
        if (tagged > limits.maxBulkMessages) {
          return reply.code(400).send({
            error: 'bad_request',
            field: 'tag',
            message: `tag ${JSON.stringify(body.tag)} covers ${tagged} messages and one bulk restore takes at most ${limits.maxBulkMessages}; narrow it with kind, or list ids in several requests`,
          });
        }
      }
      const selection = {
        ...(body.tag !== undefined ? { tag: body.tag } : {}),
        ...(body.kind !== undefined ? { kind: body.kind } : {}),
        ...(refs ? { refs } : {}),
      };
      if (body.dryRun) {
        // Reading a whole tag can take longer than one status call.
        const preview = await withTemporal(() => bulk.preview(selection, PREVIEW_LIMIT_DEFAULT), Math.max(temporalTimeoutMs, 120_000));
        return reply.code(200).send(preview);
      }
      const requestedBy = restoreRecipient(request.principal as Principal, body.requestedBy, allowedDomains);
      try {
        const started = await withTemporal(() =>
          bulk.start(
            {
              requestedBy,
              ...selection,
              ...(body.requestId !== undefined ? { requestId: body.requestId } : {}),
              ...(body.concurrency !== undefined ? { tuning: { concurrency: body.concurrency } } : {}),
              ...(body.callbackUrl !== undefined ? { callbackUrl: assertCallbackUrl(body.callbackUrl, callbacks) } : {}),
            },
            { maxRunning: limits.maxRunningBulkRestores },
          ),
        );
        return reply
          .code(started.attached ? 200 : 202)
          .send({ ...started, statusUrl: `/v1/restores/${encodeURIComponent(started.requestId)}` });
      } catch (err) {
        if (err instanceof BulkRequestConflictError)
          return reply.code(409).send({ error: 'request_conflict', message: err.message, field: 'requestId' });
        if (err instanceof TooManyBulkRestoresError) {
          return reply
            .code(429)
            .header('retry-after', String(limits.bulkRetryAfterSeconds))
            .send({ error: 'too_many_requests', message: err.message });
        }
        throw err;
      }
    },
  );

  routes.get(
    '/v1/restores/:request',
    {
      schema: {
        tags: ['restores'],
        summary: 'Progress of a bulk restore, or its outcome once it has finished',
        params: BulkRequestParams,
        response: { 200: BulkView, 400: ErrorBody, 404: ErrorBody, 503: ErrorBody, 504: ErrorBody },
      },
    },
    async (request, reply) => {
      const requestId = parseBulkRequestId(request.params.request);
      const view = await withTemporal(() => bulk.get(requestId));
      if (view === null) {
        return reply
          .code(404)
          .send({ error: 'not_found', message: `no bulk restore ${requestId} (it never existed, or is older than the retention period)` });
      }
      return reply.code(200).send(view);
    },
  );
}
