/**
 * Request and response schemas of the data plane routes (src/api/dataPlaneRoutes.ts): the first line
 * of validation and the source of their part of the OpenAPI document.
 */
import { Type, type Static } from '@fastify/type-provider-typebox';
import { AUDIENCE_TYPES, MESSAGE_KINDS } from '../shared/types';
import { TAG_PATTERN } from '../shared/validation';
import { MESSAGE_ID_PATTERN } from '../shared/workflowId';
import { FILTER_TYPES } from '../dataplane/filters/definitions';
import { EVALUATE_LIMIT_MAX } from '../dataplane/filters/evaluate';
import { ALIAS_PATTERN, EVENT_ID_PATTERN, INSTANT_PATTERN, USER_ID_PATTERN } from '../dataplane/ingest/events';
import { CHANNELS, EVENT_TYPES, MAX_BATCH_EVENTS, MESSAGE_STATUSES } from '../dataplane/model';
import { EXPORT_FIELDS, EXPORT_MAX_IDS } from '../dataplane/users';

const Kind = Type.Enum([...MESSAGE_KINDS], { description: 'Message kind.' });
const Id = Type.String({ pattern: MESSAGE_ID_PATTERN, description: "1-64 letters, digits, '-', '_' or '.'." });
const Tag = Type.String({ pattern: TAG_PATTERN });
const Instant = Type.String({ pattern: INSTANT_PATTERN, description: 'ISO-8601 instant with a time zone.' });
const NullableString = Type.Union([Type.String(), Type.Null()]);
const Counts = Type.Record(Type.String(), Type.Integer());

export const ErrorBody = Type.Object(
  {
    error: Type.String(),
    message: Type.String(),
    field: Type.Optional(Type.String()),
  },
  { additionalProperties: true, description: 'Error; some carry details (invalid events, expired filters).' },
);

const Component = Type.Object({ id: Id, name: Type.String({ minLength: 1, maxLength: 255 }) }, { additionalProperties: false });

const messageFields = {
  name: Type.String({ minLength: 1, maxLength: 255 }),
  tags: Type.Array(Tag, { maxItems: 50 }),
  status: Type.Enum([...MESSAGE_STATUSES], { description: 'active (launched), stopped or archived; changes signal the actor.' }),
  variants: Type.Array(Component, { maxItems: 100, description: 'Campaigns: message variants (two or more make it multivariate).' }),
  steps: Type.Array(Component, { maxItems: 500, description: 'Canvases: steps.' }),
  variations: Type.Array(Component, { maxItems: 100, description: 'Canvases: variations.' }),
};

export const CreateMessageBody = Type.Object(
  {
    kind: Kind,
    id: Id,
    name: messageFields.name,
    tags: Type.Optional(messageFields.tags),
    status: Type.Optional(messageFields.status),
    variants: Type.Optional(messageFields.variants),
    steps: Type.Optional(messageFields.steps),
    variations: Type.Optional(messageFields.variations),
  },
  { additionalProperties: false },
);
export type CreateMessageBody = Static<typeof CreateMessageBody>;

export const UpdateMessageBody = Type.Object(
  {
    name: Type.Optional(messageFields.name),
    tags: Type.Optional(messageFields.tags),
    status: Type.Optional(messageFields.status),
    variants: Type.Optional(messageFields.variants),
    steps: Type.Optional(messageFields.steps),
    variations: Type.Optional(messageFields.variations),
  },
  { additionalProperties: false },
);

export const MessageParams = Type.Object({ kind: Kind, id: Id }, { additionalProperties: false });

export const ResumeMessagesBody = Type.Object(
  { kind: Kind, ids: Type.Array(Id, { minItems: 1, maxItems: 100 }) },
  { additionalProperties: false },
);

const SignalReport = Type.Object({
  signalled: Type.Array(Type.Object({ kind: Kind, id: Type.String() })),
  failed: Type.Array(Type.Object({ kind: Kind, id: Type.String(), error: Type.String() })),
});

export const MessageResource = Type.Object({
  kind: Kind,
  id: Type.String(),
  name: Type.String(),
  tags: Type.Array(Type.String()),
  status: Type.String(),
  variants: Type.Array(Component),
  steps: Type.Array(Component),
  variations: Type.Array(Component),
  legacyPurged: Type.Boolean(),
});

export const SavedMessage = Type.Object({ message: MessageResource, references: SignalReport });
export const SavedMessages = Type.Object({ messages: Type.Array(SavedMessage) });

/** Documentation of one event; the route checks events itself so it can report every bad one by index. */
export const InteractionEvent = Type.Object(
  {
    eventId: Type.String({ pattern: EVENT_ID_PATTERN, description: 'Unique per event; a retried event is stored once.' }),
    type: Type.Enum([...EVENT_TYPES]),
    messageKind: Kind,
    messageId: Id,
    userId: Type.String({ pattern: USER_ID_PATTERN }),
    occurredAt: { ...Instant, description: 'When it happened; at most a day ahead of the server clock.' },
    variantId: Type.Optional({ ...Id, description: 'Campaign variant (received, opened, clicked, converted).' }),
    stepId: Type.Optional({ ...Id, description: 'Canvas step; required for received, opened and clicked of a Canvas.' }),
    variationId: Type.Optional({ ...Id, description: 'Canvas variation; required for entered_variation.' }),
    alias: Type.Optional(Type.String({ pattern: ALIAS_PATTERN, description: 'Clicked link alias.' })),
    channel: Type.Optional(Type.Enum([...CHANNELS], { description: 'Required for received, opened and clicked.' })),
  },
  { additionalProperties: false },
);

export const IngestBody = Type.Object(
  { events: Type.Array(InteractionEvent, { minItems: 1, maxItems: MAX_BATCH_EVENTS }) },
  { additionalProperties: false },
);
/** What the route really enforces before its own per-event checks. */
export const IngestEnvelope = Type.Object({ events: Type.Array(Type.Unknown()) }, { additionalProperties: false });

export const IngestResult = Type.Object({
  received: Type.Integer(),
  stored: Type.Integer({ description: 'Events stored by this call.' }),
  duplicates: Type.Integer({ description: 'Events already stored earlier (same eventId), skipped.' }),
  erased: Type.Integer({
    description: 'Events of an erased user that occurred before the erasure, refused (DELETE /v1/users/{id}); later ones are stored.',
  }),
});

export const FilterSchema = Type.Object(
  {
    type: Type.Enum([...FILTER_TYPES]),
    messageKind: Type.Optional(Kind),
    messageId: Type.Optional(Type.String()),
    variantId: Type.Optional(Type.String()),
    stepId: Type.Optional(Type.String()),
    variationId: Type.Optional(Type.String()),
    alias: Type.Optional(Type.String()),
    tag: Type.Optional(Type.String()),
    after: Type.Optional({ ...Instant, description: 'Window filters: latest matching event at or after this instant.' }),
    before: Type.Optional({ ...Instant, description: 'Window filters: latest matching event before this instant.' }),
    action: Type.Optional(Type.Enum(['opened', 'clicked'])),
  },
  { additionalProperties: false },
);

export const AudienceParams = Type.Object({ id: Id }, { additionalProperties: false });

export const AudienceBody = Type.Object(
  {
    type: Type.Enum([...AUDIENCE_TYPES]),
    name: Type.String({ minLength: 1, maxLength: 255 }),
    active: Type.Boolean(),
    messageId: Type.Optional({ ...Id, description: 'Campaign and Canvas audiences: the message they target.' }),
    filters: Type.Array(FilterSchema, { maxItems: 100 }),
    segmentIds: Type.Optional(Type.Array(Id, { maxItems: 50 })),
  },
  { additionalProperties: false },
);
export type AudienceBody = Static<typeof AudienceBody>;

export const AudienceResource = Type.Object({
  id: Type.String(),
  type: Type.String(),
  name: Type.String(),
  active: Type.Boolean(),
  messageId: Type.Optional(Type.String()),
  filters: Type.Array(Type.Object({}, { additionalProperties: true })),
  segmentIds: Type.Array(Type.String()),
});

export const SavedAudience = Type.Object({ audience: AudienceResource, references: SignalReport });

export const ActivateAudiencesBody = Type.Object({ ids: Type.Array(Id, { minItems: 1, maxItems: 100 }) }, { additionalProperties: false });
export const ActivatedAudiences = Type.Object({ audiences: Type.Array(AudienceResource), references: SignalReport });

export const EvaluateBody = Type.Object(
  {
    filter: FilterSchema,
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 400, description: 'nextCursor of the previous page.' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: EVALUATE_LIMIT_MAX, description: 'Users per page (default 1000).' })),
  },
  { additionalProperties: false },
);

export const EvaluateResult = Type.Object({
  userIds: Type.Array(Type.String()),
  nextCursor: NullableString,
  excludedMessages: Type.Array(Type.Object({ kind: Kind, id: Type.String(), state: Type.String() }), {
    description: 'Messages the filter names whose data is not available (expired): they matched nobody.',
  }),
});

export const UserParams = Type.Object({ id: Type.String({ pattern: USER_ID_PATTERN }) }, { additionalProperties: false });

export const UserInteractionsQuery = Type.Object(
  { format: Type.Optional(Type.Union([Type.Literal('ndjson'), Type.Literal('csv')], { description: 'ndjson (the default) or csv' })) },
  { additionalProperties: false },
);

export const UserProfile = Type.Object(
  {
    id: Type.String(),
    firstSeenAt: Type.String(),
    summary: Type.Record(Type.String(), NullableString),
    campaignsReceived: Type.Array(Type.Object({}, { additionalProperties: true })),
    canvasMessagesReceived: Type.Array(Type.Object({}, { additionalProperties: true })),
  },
  { additionalProperties: false },
);

export const ExportBody = Type.Object(
  {
    external_ids: Type.Array(Type.String({ pattern: USER_ID_PATTERN }), { minItems: 1, maxItems: EXPORT_MAX_IDS }),
    fields_to_export: Type.Optional(Type.Array(Type.Enum([...EXPORT_FIELDS]), { minItems: 1 })),
  },
  { additionalProperties: false },
);

export const ExportResult = Type.Object({
  users: Type.Array(Type.Object({}, { additionalProperties: true })),
  invalid_user_ids: Type.Array(Type.String()),
  message: Type.String(),
});

export const AnalyticsResult = Type.Object(
  {
    kind: Kind,
    id: Type.String(),
    name: Type.String(),
    totals: Counts,
    uniqueRecipients: Type.Integer(),
    byChannel: Type.Record(Type.String(), Counts),
    variants: Type.Optional(Type.Array(Type.Object({ id: Type.String(), name: Type.String(), counts: Counts }))),
    steps: Type.Optional(Type.Array(Type.Object({ id: Type.String(), name: Type.String(), counts: Counts }))),
    variations: Type.Optional(Type.Array(Type.Object({ id: Type.String(), name: Type.String(), counts: Counts }))),
    daily: Type.Array(Type.Object({ day: Type.String(), counts: Counts })),
  },
  { additionalProperties: false },
);
