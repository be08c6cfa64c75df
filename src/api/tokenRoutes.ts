/**
 * API tokens over HTTP, for admins who manage callers without a shell on the service's hosts. The
 * same store and rules as `interaction-data tokens`; the secret is in the create answer only.
 */
import { Type } from '@fastify/type-provider-typebox';
import type { Knex } from 'knex';
import { ApiTokenStore, TokenError, tokenView } from '../auth/apiTokens';
import { parseScopes, SCOPES, type Principal } from '../auth/scopes';
import { EMAIL_PATTERN } from '../shared/validation';
import type { ApiServer } from './app';
import { ErrorBody } from './schemas';

const Scope = Type.Enum(Object.fromEntries(SCOPES.map((s) => [s, s])) as Record<string, string>, {
  description: 'A scope of this service.',
});
const NullableString = Type.Union([Type.String(), Type.Null()]);

const TokenView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  scopes: Type.Array(Type.String()),
  email: NullableString,
  createdAt: Type.String(),
  createdBy: Type.String(),
  expiresAt: NullableString,
  revokedAt: NullableString,
  lastUsedAt: NullableString,
});

const CreateTokenBody = Type.Object(
  {
    name: Type.String({ pattern: '^[\\w.@:-]{1,128}$', description: 'What the token is for, e.g. billing-service.' }),
    scopes: Type.Array(Scope, { minItems: 1, maxItems: SCOPES.length, uniqueItems: true }),
    email: Type.Optional(Type.String({ pattern: EMAIL_PATTERN, maxLength: 254, description: "Where this caller's restore e-mails go." })),
    expiresAt: Type.Optional(Type.String({ format: 'date-time', description: 'When the token stops working (default: never).' })),
  },
  { additionalProperties: false },
);

const TokenParams = Type.Object({ id: Type.String({ pattern: '^[0-9a-f]{16}$|^bootstrap$' }) }, { additionalProperties: false });

export function registerTokenRoutes(routes: ApiServer, db: Knex): void {
  const store = new ApiTokenStore(db);

  routes.post(
    '/v1/tokens',
    {
      schema: {
        tags: ['operations'],
        summary: 'Make an API token; its secret is in this answer only',
        body: CreateTokenBody,
        response: { 201: Type.Object({ token: Type.String(), ...TokenView.properties }), 400: ErrorBody },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const expiresAt = body.expiresAt === undefined ? null : new Date(body.expiresAt);
      if (expiresAt && Number.isNaN(expiresAt.getTime()))
        return reply.code(400).send({ error: 'bad_request', field: 'expiresAt', message: 'expiresAt must be a date-time' });
      try {
        const made = await store.create({
          name: body.name,
          scopes: parseScopes(body.scopes.join(' ')),
          email: body.email ?? null,
          expiresAt,
          createdBy: (request.principal as Principal).id,
        });
        return reply.code(201).send({ token: made.token, ...tokenView(made.record) });
      } catch (err) {
        if (err instanceof TokenError) return reply.code(400).send({ error: 'bad_request', message: err.message });
        throw err;
      }
    },
  );

  routes.get(
    '/v1/tokens',
    {
      schema: {
        tags: ['operations'],
        summary: 'API tokens and their scopes (never their secrets)',
        querystring: Type.Object(
          { all: Type.Optional(Type.Boolean({ description: 'Include revoked tokens.' })) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ items: Type.Array(TokenView) }) },
      },
    },
    async (request, reply) =>
      reply.code(200).send({ items: (await store.list({ includeRevoked: request.query.all === true })).map(tokenView) }),
  );

  routes.delete(
    '/v1/tokens/:id',
    {
      schema: {
        tags: ['operations'],
        summary: 'Revoke a token: requests with it are refused from now on (revoking twice changes nothing)',
        params: TokenParams,
        response: { 200: TokenView, 400: ErrorBody, 404: ErrorBody },
      },
    },
    async (request, reply) => {
      const exists = await db('api_tokens').where({ id: request.params.id }).first<Record<string, unknown> | undefined>();
      if (!exists) return reply.code(404).send({ error: 'not_found', message: `no token ${request.params.id}` });
      return reply.code(200).send(tokenView(await store.revoke(request.params.id)));
    },
  );
}
