/**
 * Read-only answers for operators: GET /v1/forecast (what expires within a window, what is retained and
 * by what) and GET /v1/storage (hot and archived rows and bytes by state, kind, tag and month of expiry).
 */
import { Type } from '@fastify/type-provider-typebox';
import type { Db } from '../db/knex';
import { forecast } from '../reports/forecast';
import { storageReport } from '../reports/storageReport';
import { windowEnd } from '../reports/window';
import { assertTag } from '../shared/validation';
import type { ApiServer } from './app';
import { ErrorBody } from './schemas';

const FORECAST_LIMIT_DEFAULT = 1_000;
const FORECAST_LIMIT_MAX = 10_000;

const Audience = Type.Object({ id: Type.String(), type: Type.String(), name: Type.Union([Type.String(), Type.Null()]) });
const ForecastItem = Type.Object({
  kind: Type.String(),
  id: Type.String(),
  name: Type.Union([Type.String(), Type.Null()]),
  at: Type.String({ description: 'Expiry (expiring) or the next count of references (retained).' }),
  hotRows: Type.Integer(),
  hotBytes: Type.Integer(),
  activeReferences: Type.Integer({ description: 'Active audiences filtering on it now: with any, it is retained instead of moving.' }),
  audiences: Type.Array(Audience),
});
const ForecastSchema = Type.Object({
  from: Type.String(),
  until: Type.String(),
  expiring: Type.Array(ForecastItem),
  retained: Type.Array(ForecastItem),
  totals: Type.Object({
    expiring: Type.Integer(),
    expiringRows: Type.Integer({ description: 'Hot rows of the expiring messages no audience keeps: what moves.' }),
    expiringBytes: Type.Integer(),
    keptByAudiences: Type.Integer(),
    retained: Type.Integer(),
  }),
  truncated: Type.Boolean({ description: 'More messages than `limit` in a part: the earliest are listed, and the totals cover them.' }),
});
const Figures = {
  messages: Type.Integer(),
  hotRows: Type.Integer(),
  hotBytes: Type.Integer(),
  archivedRows: Type.Integer(),
  archivedBytes: Type.Integer(),
};
const StorageSchema = Type.Object({
  generatedAt: Type.String(),
  byState: Type.Record(Type.String(), Type.Integer()),
  total: Type.Object(Figures),
  byKind: Type.Array(Type.Object({ kind: Type.String(), ...Figures })),
  byTag: Type.Array(Type.Object({ tag: Type.String(), ...Figures })),
  byExpiryMonth: Type.Array(Type.Object({ month: Type.String(), ...Figures })),
});

export function registerReportRoutes(routes: ApiServer, db: Db): void {
  routes.get(
    '/v1/forecast',
    {
      schema: {
        tags: ['operations'],
        summary: 'What expires within a window (when, with its hot rows and bytes) and what is retained, by which audiences',
        querystring: Type.Object(
          {
            within: Type.String({ default: '30d', description: 'The window from now: 30d, 2 weeks, 3 months (at most 5 years).' }),
            tag: Type.Optional(Type.String()),
            kind: Type.Optional(Type.Union([Type.Literal('campaign'), Type.Literal('canvas')])),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: FORECAST_LIMIT_MAX, default: FORECAST_LIMIT_DEFAULT })),
          },
          { additionalProperties: false },
        ),
        response: { 200: ForecastSchema, 400: ErrorBody },
      },
    },
    async (request, reply) => {
      const { within, tag, kind } = request.query;
      const until = windowEnd(within);
      if (tag !== undefined) assertTag(tag);
      const answer = await forecast(db, {
        until,
        limit: request.query.limit ?? FORECAST_LIMIT_DEFAULT,
        ...(tag ? { tag } : {}),
        ...(kind ? { kind } : {}),
      });
      return reply.code(200).send(answer);
    },
  );
  routes.get(
    '/v1/storage',
    {
      schema: {
        tags: ['operations'],
        summary: 'Messages by state; hot and archived rows and bytes by kind, tag and month of expiry',
        response: { 200: StorageSchema },
      },
    },
    async (_request, reply) => reply.code(200).send(await storageReport(db)),
  );
}
