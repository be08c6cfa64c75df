/**
 * Request and response schemas of the HTTP API. They are the first line of validation (a request
 * that fails them never reaches Temporal) and the source of the OpenAPI document.
 *
 * `Type` comes from the fastify type provider so that schemas, the validator compiler and the
 * inferred handler types all use the same TypeBox version.
 */
import { Type, type Static } from '@fastify/type-provider-typebox';
import { LIFECYCLE_STATES, MESSAGE_KINDS } from '../shared/types';
import { EMAIL_PATTERN, REQUEST_ID_PATTERN, TAG_PATTERN } from '../shared/validation';
import { MESSAGE_ID_PATTERN } from '../shared/workflowId';

/** Mirrors assertInstant(): a time zone is required so that a stop is never read in the server's zone. */
export const INSTANT_PATTERN = '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}(:\\d{2}(\\.\\d+)?)?(Z|[+-]\\d{2}:\\d{2})$';

export const LIST_LIMIT_DEFAULT = 100;
export const LIST_LIMIT_MAX = 1000;

/**
 * What a client must change, per field, when a value is rejected. The error handler names the field
 * and quotes the value it received, so these only describe the rule.
 */
export const FIELD_RULES: Record<string, string> = {
  kind: `must be one of ${MESSAGE_KINDS.join(', ')}`,
  id: "must be 1-64 characters of letters, digits, '-', '_' or '.', starting with a letter or digit",
  stoppedAt: 'must be an ISO-8601 instant with a time zone, e.g. 2026-01-31T12:00:00Z',
  requestedBy: 'must be an e-mail address',
  requestId: "must be 1-100 characters of letters, digits, '_', '.', ':' or '-', starting with a letter or digit",
  state: `must be one of ${LIFECYCLE_STATES.join(', ')}`,
  tag: "must be 1-100 letters, digits, spaces or '_', '.', ':', '/', '+', '-', starting with a letter or digit",
  limit: `must be an integer from 1 to ${LIST_LIMIT_MAX}`,
};

const Kind = Type.Enum([...MESSAGE_KINDS], { description: 'Message kind.' });
const MessageId = Type.String({ pattern: MESSAGE_ID_PATTERN, description: 'Campaign or Canvas API identifier.' });
const State = Type.Enum([...LIFECYCLE_STATES], { description: 'Lifecycle state of the message.' });
const Tag = Type.String({ pattern: TAG_PATTERN, description: 'Message tag.' });
const Email = Type.String({ pattern: EMAIL_PATTERN, maxLength: 254, description: 'Receives the "restore complete" e-mail.' });
const RequestId = Type.String({
  pattern: REQUEST_ID_PATTERN,
  description: 'Caller-chosen idempotency key; a restore with an id the message has already seen is ignored.',
});
const Instant = Type.String({ pattern: INSTANT_PATTERN, description: 'ISO-8601 instant with a time zone.' });
export const NullableString = Type.Union([Type.String(), Type.Null()]);

export const MessageParams = Type.Object({ kind: Kind, id: MessageId }, { additionalProperties: false });
export type MessageParams = Static<typeof MessageParams>;

export const StopBody = Type.Object(
  { stoppedAt: Type.Optional({ ...Instant, description: 'When the message stopped; defaults to when the message receives the signal.' }) },
  { additionalProperties: false },
);
export type StopBody = Static<typeof StopBody>;

export const ResumeBody = Type.Object({}, { additionalProperties: false });

export const CallbackUrl = Type.String({
  maxLength: 2000,
  description:
    'Called with a signed POST (Interaction-Data-Signature: t=…,v1=HMAC-SHA256) when the restore completes or fails, retried for up to 3 days; its host must be in CALLBACK_ALLOWED_HOSTS.',
});

export const RestoreBody = Type.Object(
  {
    requestedBy: Type.Optional({
      ...Email,
      description:
        "Who is e-mailed when the data is back: by default the caller's own address (its token's e-mail); another address only in EMAIL_ALLOWED_DOMAINS.",
    }),
    requestId: Type.Optional(RequestId),
    callbackUrl: Type.Optional(CallbackUrl),
  },
  { additionalProperties: false },
);
export type RestoreBody = Static<typeof RestoreBody>;

export const ListQuery = Type.Object(
  {
    state: Type.Optional(State),
    tag: Type.Optional(Tag),
    kind: Type.Optional(Kind),
    limit: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: LIST_LIMIT_MAX,
        default: LIST_LIMIT_DEFAULT,
        description: 'Maximum number of messages returned.',
      }),
    ),
  },
  { additionalProperties: false },
);
export type ListQuery = Static<typeof ListQuery>;

export const ErrorBody = Type.Object(
  {
    error: Type.String({ description: 'Machine-readable code.' }),
    message: Type.String({ description: 'What went wrong, for people.' }),
    field: Type.Optional(Type.String({ description: 'The first rejected field, for a 400.' })),
  },
  { additionalProperties: false },
);
export type ErrorBody = Static<typeof ErrorBody>;

/** The actor's answer to a stop or resume Update. */
export const ActorAnswer = Type.Object({
  workflowId: Type.String({ description: 'interaction-data:<kind>:<id>' }),
  kind: Kind,
  id: Type.String(),
  changed: Type.Boolean({
    description: 'False when the request changed nothing (already stopped, already active, or a stop older than the latest resume).',
  }),
  state: Type.String({ description: "The actor's state after the request." }),
  stoppedAt: Type.Optional(NullableString),
  expiresAt: Type.Optional({ ...NullableString, description: 'When the data expires, while stopped or retained.' }),
});

export const RetryResult = Type.Object({
  workflowId: Type.String(),
  kind: Kind,
  id: Type.String(),
  retried: Type.String({ description: 'The activity the actor runs again.' }),
});

/**
 * The actor's own status. Extra properties pass through untouched so that a field added to the
 * workflow's status reaches clients without an API change.
 */
export const LifecycleStatusSchema = Type.Object(
  {
    kind: Kind,
    id: Type.String(),
    name: NullableString,
    tags: Type.Array(Type.String()),
    state: State,
    available: Type.Boolean(),
    expiresAt: { ...NullableString, description: 'Expiry (stopped) or next cleanup check (retained); null otherwise.' },
    stoppedAt: NullableString,
    activeReferences: Type.Integer(),
    referencingAudiences: Type.Optional(
      Type.Array(Type.Object({ id: Type.String(), type: Type.String(), name: NullableString }), {
        description: 'While retained: the active audiences (the first 20 by id) whose retargeting filter on the message keeps its data.',
      }),
    ),
    lastCheckedAt: NullableString,
    archive: Type.Union([Type.Object({}, { additionalProperties: true }), Type.Null()]),
    pendingRestores: Type.Array(Type.Object({}, { additionalProperties: true })),
    lastRestore: Type.Union([Type.Object({}, { additionalProperties: true }), Type.Null()]),
    lastRefusal: Type.Union([Type.Object({}, { additionalProperties: true }), Type.Null()]),
    problem: Type.Optional(
      Type.Union([
        Type.Object(
          {},
          { additionalProperties: true, description: 'A step that cannot proceed without an operator: {activity, type, error, since}.' },
        ),
        Type.Null(),
      ]),
    ),
    archivingHeld: Type.Optional(
      Type.Union([
        Type.Object(
          { pausedBy: Type.String(), pausedAt: Type.String(), reason: NullableString, recheckAt: Type.String() },
          { description: 'Due and unreferenced, but kept available because archiving is paused; looked at again at recheckAt.' },
        ),
        Type.Null(),
      ]),
    ),
    revision: Type.Integer(),
  },
  { additionalProperties: true },
);

export const RestoreResult = Type.Object({
  workflowId: Type.String(),
  kind: Kind,
  id: Type.String(),
  requestId: Type.String(),
  accepted: Type.Boolean({ description: 'False when the data was already available and nothing was queued.' }),
  state: Type.Optional(Type.String({ description: "The actor's state when it answered." })),
  message: Type.Optional(Type.String()),
  status: Type.Optional(Type.Union([LifecycleStatusSchema, Type.Null()])),
});

export const ActorSummarySchema = Type.Object({
  workflowId: Type.String(),
  kind: Kind,
  id: Type.String(),
  state: NullableString,
  tags: Type.Array(Type.String()),
  expiresAt: NullableString,
});

export const ListResult = Type.Object({
  items: Type.Array(ActorSummarySchema),
  count: Type.Integer(),
  limit: Type.Integer(),
  truncated: Type.Boolean({ description: 'More messages match than the limit allowed.' }),
});

export const Health = Type.Object({
  ok: Type.Boolean(),
  temporal: Type.Boolean({ description: 'The Temporal frontend answered.' }),
  database: Type.Optional(Type.Boolean({ description: 'The MySQL database answered (when the API has one).' })),
  message: Type.Optional(Type.String()),
});
