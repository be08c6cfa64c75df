/**
 * The archiving brake over HTTP: GET /v1/archiving (the switch and the messages it holds), POST
 * /v1/archiving/pause and POST /v1/archiving/resume, for admins. The same as `interaction-data archiving`.
 */
import { Type } from '@fastify/type-provider-typebox';
import type { Db } from '../db/knex';
import { archivingPause, archivingResume, archivingStatusOf, type WakeHeld } from '../client/archivingControl';
import type { Principal } from '../auth/scopes';
import type { ApiServer } from './app';
import { ErrorBody, NullableString } from './schemas';

const Status = {
  paused: Type.Boolean(),
  changedBy: { ...NullableString, description: 'Who paused or last resumed archiving (null before anyone has).' },
  changedAt: NullableString,
  reason: NullableString,
  heldMessages: Type.Integer({ description: 'Messages due whose actors keep their data available until archiving resumes.' }),
};
const StatusSchema = Type.Object(Status);
const ResumeSchema = Type.Object({
  ...Status,
  woken: Type.Integer({ description: 'Held actors told to count their references again now.' }),
  notWoken: Type.Integer({ description: 'Held actors that could not be told; they look again at their recheck.' }),
});

const who = (p: Principal | null) => (p ? `${p.name} (${p.id})` : 'unknown');

export function registerArchivingRoutes(routes: ApiServer, db: Db, wake: WakeHeld | null): void {
  routes.get(
    '/v1/archiving',
    {
      schema: {
        tags: ['operations'],
        summary: 'Whether archiving is paused, by whom and why, and how many due messages wait',
        response: { 200: StatusSchema },
      },
    },
    async (_request, reply) => reply.code(200).send(await archivingStatusOf(db)),
  );
  routes.post(
    '/v1/archiving/pause',
    {
      schema: {
        tags: ['operations'],
        summary: 'Pause archiving in every worker: due messages keep their data and say why; moves under way stop after their chunk',
        body: Type.Object({ reason: Type.Optional(Type.String({ maxLength: 1000 })) }, { additionalProperties: false }),
        response: { 200: StatusSchema, 400: ErrorBody },
      },
    },
    async (request, reply) => reply.code(200).send(await archivingPause(db, who(request.principal), request.body.reason ?? null)),
  );
  routes.post(
    '/v1/archiving/resume',
    {
      schema: {
        tags: ['operations'],
        summary: 'Resume archiving and wake every actor the pause held, so its data moves now',
        response: { 200: ResumeSchema },
      },
    },
    async (request, reply) => reply.code(200).send(await archivingResume(db, who(request.principal), wake)),
  );
}
