import pino, { type DestinationStream, type Logger, type LoggerOptions } from 'pino';

/**
 * Keys whose values never reach a log line, at the top level of a log object and two levels down
 * (pino's `redact` takes paths, and `*` is one level). Header names as Node gives them, lower case,
 * and as a caller may spell them.
 */
const SECRET_KEYS = [
  'password',
  'passwd',
  'secret',
  'token',
  'accessToken',
  'refreshToken',
  'apiKey',
  'api_key',
  'authorization',
  'Authorization',
  'cookie',
  'TEMPORAL_API_KEY',
  'TEMPORAL_CODEC_AUTH',
  'RESEND_API_KEY',
  'CALLBACK_SIGNING_SECRET',
  'callbackSigningSecret',
  'API_ADMIN_TOKEN',
  'MYSQL_PASSWORD',
  'MYSQL_ROOT_PASSWORD',
  'MYSQL_MIGRATE_PASSWORD',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'secretAccessKey',
  'sessionToken',
  'credentials',
];

export const REDACTED = '[redacted]';

export const REDACT_PATHS: readonly string[] = [
  ...SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]),
  'req.headers["set-cookie"]',
  'res.headers["set-cookie"]',
  '*.headers["x-api-key"]',
  '*.*.headers.authorization',
  '*.*.headers.Authorization',
];

/** Environment variables whose values are secrets, wherever their text turns up (an error message, a URL). */
const SECRET_VARIABLES = [
  'TEMPORAL_API_KEY',
  'TEMPORAL_CODEC_AUTH',
  'RESEND_API_KEY',
  'API_ADMIN_TOKEN',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
];

/** Shorter values would also match ordinary words; the patterns below still catch them in their usual places. */
const MIN_SECRET_LENGTH = 8;

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Rewrites the secrets a log line may carry in its text: the password of a URL (`mysql://user:pass@host`),
 * a bearer or basic credential, a token-like query parameter, and the values of this process's secret
 * variables and MYSQL_URL password. Works on a JSON line as on plain text: no pattern crosses a `"`.
 */
export function secretScrubber(env: NodeJS.ProcessEnv = process.env): (text: string) => string {
  const values = SECRET_VARIABLES.map((name) => env[name]?.trim() ?? '');
  try {
    if (env.MYSQL_URL) values.push(decodeURIComponent(new URL(env.MYSQL_URL).password));
  } catch {
    // Not a URL: loadConfig reports that; there is no password to take from it.
  }
  const known = values.filter((v) => v.length >= MIN_SECRET_LENGTH).sort((a, b) => b.length - a.length);
  const literal = known.length ? new RegExp(known.map(escapeRegExp).join('|'), 'g') : null;
  return (text) => {
    let out = text
      .replace(/\b([a-z][a-z0-9+.-]*:\/\/[^\s:@/"]*):[^\s@/"]*@/gi, `$1:${REDACTED}@`)
      .replace(/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/g, `$1 ${REDACTED}`)
      .replace(/([?&](?:token|access_token|api_key|apikey|api-key|password|secret)=)[^&\s#"']+/gi, `$1${REDACTED}`);
    if (literal) out = out.replace(literal, REDACTED);
    return out;
  };
}

/**
 * Scrubs each finished line on its way out. Secrets in text can sit anywhere: a message, an error's
 * message or stack, a child logger's bindings, what a serializer (Fastify's request URL) made; the
 * finished line is the one place that has them all.
 */
function scrubbing(inner: DestinationStream, scrub: (line: string) => string): DestinationStream {
  const flushable = inner as DestinationStream & { flush?: (cb?: (err?: Error | null) => void) => void; flushSync?: () => void };
  return Object.assign(
    { write: (line: string) => inner.write(scrub(line)) },
    typeof flushable.flush === 'function' ? { flush: (cb?: (err?: Error | null) => void) => flushable.flush?.(cb) } : {},
    typeof flushable.flushSync === 'function' ? { flushSync: () => flushable.flushSync?.() } : {},
  );
}

export interface LoggerDestination {
  /** Where lines go; stdout (pretty-printed on a terminal) by default. */
  destination?: DestinationStream;
  /** Where the secret variables are read from; process.env by default. */
  env?: NodeJS.ProcessEnv;
}

/** Structured JSON logs; pretty-printed when a person is watching the terminal. Secrets are redacted either way. */
export function createLogger(name: string, level = process.env.LOG_LEVEL || 'info', opts: LoggerDestination = {}): Logger {
  const options: LoggerOptions = { name, level, redact: { paths: [...REDACT_PATHS], censor: REDACTED } };
  const pretty = !opts.destination && process.stdout.isTTY && process.env.LOG_FORMAT !== 'json';
  const inner =
    opts.destination ??
    (pretty
      ? pino.transport({ target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } })
      : pino.destination({ fd: process.stdout.fd ?? 1 }));
  return pino(options, scrubbing(inner, secretScrubber(opts.env ?? process.env)));
}

export type { Logger };
