import type { FastifyRequest } from 'fastify';

/** The part of a request a schema checks, as fastify names it in a validation error. */
export type ValidationContext = 'body' | 'params' | 'querystring' | 'headers';

/** That part's parsed value, and what an error message calls it. */
export function requestPart(request: FastifyRequest, context: ValidationContext): { input: unknown; where: string } {
  const input =
    context === 'querystring'
      ? request.query
      : context === 'params'
        ? request.params
        : context === 'headers'
          ? request.headers
          : request.body;
  const where = context === 'querystring' ? 'query string' : context === 'params' ? 'path' : context;
  return { input, where };
}
