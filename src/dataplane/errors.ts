/**
 * Failures the data plane reports to callers. Each carries its HTTP status and a machine-readable code;
 * the routes' error handler turns them into `{error, message, ...details}`.
 */
export class DataPlaneError extends Error {
  override name = 'DataPlaneError';
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export const badRequest = (message: string, details: Record<string, unknown> = {}) =>
  new DataPlaneError(400, 'bad_request', message, details);
export const notFound = (message: string) => new DataPlaneError(404, 'not_found', message);
export const conflict = (code: string, message: string, details: Record<string, unknown> = {}) =>
  new DataPlaneError(409, code, message, details);
