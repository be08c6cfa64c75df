/**
 * What a principal may ask for beyond its scopes: whom a restore e-mails, and how far back a stop may
 * be dated.
 */
import { grantingScope, type Principal } from './scopes';

export class PolicyError extends Error {
  override name = 'PolicyError';
  constructor(
    message: string,
    /** 400: the request names something no token may ask for; 403: a broader scope may. */
    readonly status: 400 | 403,
  ) {
    super(message);
  }
}

/** `EMAIL_ALLOWED_DOMAINS`: a comma-separated list of domains, lower-cased; empty when unset. */
export function allowedEmailDomains(env: NodeJS.ProcessEnv = process.env): string[] {
  const text = env.EMAIL_ALLOWED_DOMAINS ?? '';
  const domains = text
    .split(',')
    .map((d) => d.trim().toLowerCase().replace(/^@/, ''))
    .filter(Boolean);
  for (const d of domains) {
    if (!/^[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(d)) throw new Error(`EMAIL_ALLOWED_DOMAINS: ${JSON.stringify(d)} is not a domain name`);
  }
  return domains;
}

/**
 * The address a restore's e-mail goes to. The caller's own address (from its token) by default; another
 * address only when its domain is allowed, so the service cannot be made to mail anyone on the internet.
 */
export function restoreRecipient(
  principal: Pick<Principal, 'email' | 'name'>,
  requestedBy: string | undefined,
  allowedDomains: readonly string[],
): string {
  const own = principal.email;
  if (requestedBy === undefined || requestedBy.trim() === '') {
    if (own) return own;
    throw new PolicyError(
      `requestedBy is required: the token "${principal.name}" carries no e-mail address` +
        (allowedDomains.length ? `; give an address in ${allowedDomains.join(', ')}` : ''),
      400,
    );
  }
  const wanted = requestedBy.trim();
  if (own && wanted.toLowerCase() === own.toLowerCase()) return own;
  const domain = wanted.slice(wanted.lastIndexOf('@') + 1).toLowerCase();
  if (allowedDomains.includes(domain)) return wanted;
  throw new PolicyError(
    `requestedBy ${JSON.stringify(wanted)} is not allowed: restore e-mails go to the caller's own address` +
      (own ? ` (${own})` : '') +
      (allowedDomains.length ? ` or to an address in ${allowedDomains.join(', ')}` : '; EMAIL_ALLOWED_DOMAINS allows no other domain'),
    400,
  );
}

/** How far in the past a stop may be dated without `admin`: clocks of calling services differ a little. */
export const STOPPED_AT_SKEW_MS = 5 * 60_000;

/**
 * A stop dated well in the past shortens the message's retention, so backdating it (which can archive
 * it at once) needs `admin`; a stop dated now or a few minutes ago is what a service normally sends.
 */
export function checkStoppedAt(principal: Pick<Principal, 'scopes'>, stoppedAt: string | undefined, now: Date = new Date()): void {
  if (stoppedAt === undefined) return;
  const at = Date.parse(stoppedAt);
  if (Number.isNaN(at)) return; // the schema reports a malformed date
  if (now.getTime() - at <= STOPPED_AT_SKEW_MS) return;
  if (grantingScope(principal, ['admin']) !== null) return;
  throw new PolicyError(
    `stoppedAt ${stoppedAt} is more than ${STOPPED_AT_SKEW_MS / 60_000} minutes in the past; a backdated stop shortens retention and needs the admin scope`,
    403,
  );
}
