/** Input rules shared by the HTTP API schemas, the CLI and the client module. */

/** Pragmatic address check (what a form would accept); Resend does the real validation. */
export const EMAIL_PATTERN =
  "^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$";
const EMAIL_RE = new RegExp(EMAIL_PATTERN);

/** Tags end up inside Temporal visibility queries: no quotes or backslashes, so no escaping games. */
export const TAG_PATTERN = '^[\\p{L}\\p{N}][\\p{L}\\p{N} _.:/+-]{0,99}$';
const TAG_RE = new RegExp(TAG_PATTERN, 'u');

export const REQUEST_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$';
const REQUEST_ID_RE = new RegExp(REQUEST_ID_PATTERN);

export class InvalidInputError extends Error {
  override name = 'InvalidInputError';
}

export function assertEmail(value: unknown, field = 'requestedBy'): string {
  if (typeof value !== 'string' || value.length > 254 || !EMAIL_RE.test(value)) {
    throw new InvalidInputError(`${field} must be an e-mail address, got ${JSON.stringify(value)}`);
  }
  return value;
}

export function assertTag(value: unknown): string {
  if (typeof value !== 'string' || !TAG_RE.test(value)) {
    throw new InvalidInputError(`malformed tag ${JSON.stringify(value)}: 1-100 letters, digits, spaces or _ . : / + -`);
  }
  return value;
}

export function assertRequestId(value: unknown): string {
  if (typeof value !== 'string' || !REQUEST_ID_RE.test(value)) {
    throw new InvalidInputError(`malformed requestId ${JSON.stringify(value)}: 1-100 letters, digits or _ . : -`);
  }
  return value;
}

/** An ISO-8601 instant with a time zone, e.g. 2026-01-31T12:00:00Z. */
export function assertInstant(value: unknown, field: string): string {
  if (
    typeof value !== 'string' ||
    !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(value) ||
    Number.isNaN(Date.parse(value))
  ) {
    throw new InvalidInputError(
      `${field} must be an ISO-8601 instant with a time zone, e.g. 2026-01-31T12:00:00Z; got ${JSON.stringify(value)}`,
    );
  }
  return new Date(value).toISOString();
}
