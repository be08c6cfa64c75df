/**
 * How much one caller may ask of the API: requests per token, how long a request may take to arrive,
 * and how many bulk restores run at once. From the environment, with defaults for one small team.
 */
import { parseDuration } from '../shared/duration';

export interface ApiLimits {
  /** Requests per token (or per client address before authentication) per window. */
  rateLimitMax: number;
  rateLimitWindowMs: number;
  /** Time for a client to send a whole request. */
  requestTimeoutMs: number;
  /** An idle socket is closed after this long. */
  connectionTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** Bulk restores running at once; one more is refused with 429 until one finishes. */
  maxRunningBulkRestores: number;
  /** Messages one bulk restore may cover (ids listed or a tag's messages). */
  maxBulkMessages: number;
  /** Retry-After sent when the bulk cap is reached. */
  bulkRetryAfterSeconds: number;
}

export const DEFAULT_API_LIMITS: ApiLimits = {
  rateLimitMax: 600,
  rateLimitWindowMs: 60_000,
  requestTimeoutMs: 30_000,
  connectionTimeoutMs: 120_000,
  keepAliveTimeoutMs: 72_000,
  maxRunningBulkRestores: 4,
  maxBulkMessages: 10_000,
  bulkRetryAfterSeconds: 60,
};

function positive(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got "${raw}"`);
  return n;
}

function fixedDuration(name: string, raw: string | undefined, fallbackMs: number): number {
  if (raw === undefined || raw.trim() === '') return fallbackMs;
  try {
    const d = parseDuration(raw);
    if (d.months > 0) throw new Error('give it in days or shorter units');
    return d.milliseconds;
  } catch (err) {
    throw new Error(`${name}: ${(err as Error).message}`, { cause: err });
  }
}

export function apiLimitsFromEnv(env: NodeJS.ProcessEnv = process.env): ApiLimits {
  return {
    rateLimitMax: positive('API_RATE_LIMIT', env.API_RATE_LIMIT, DEFAULT_API_LIMITS.rateLimitMax),
    rateLimitWindowMs: fixedDuration('API_RATE_LIMIT_WINDOW', env.API_RATE_LIMIT_WINDOW, DEFAULT_API_LIMITS.rateLimitWindowMs),
    requestTimeoutMs: fixedDuration('API_REQUEST_TIMEOUT', env.API_REQUEST_TIMEOUT, DEFAULT_API_LIMITS.requestTimeoutMs),
    connectionTimeoutMs: fixedDuration('API_CONNECTION_TIMEOUT', env.API_CONNECTION_TIMEOUT, DEFAULT_API_LIMITS.connectionTimeoutMs),
    keepAliveTimeoutMs: DEFAULT_API_LIMITS.keepAliveTimeoutMs,
    maxRunningBulkRestores: positive('BULK_RESTORES_MAX_RUNNING', env.BULK_RESTORES_MAX_RUNNING, DEFAULT_API_LIMITS.maxRunningBulkRestores),
    maxBulkMessages: positive('BULK_RESTORE_MAX_MESSAGES', env.BULK_RESTORE_MAX_MESSAGES, DEFAULT_API_LIMITS.maxBulkMessages),
    bulkRetryAfterSeconds: DEFAULT_API_LIMITS.bulkRetryAfterSeconds,
  };
}
