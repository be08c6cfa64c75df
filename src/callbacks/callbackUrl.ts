/**
 * Which URLs a restore may ask to be called back at. The worker POSTs to them from inside the network,
 * so a caller must not be able to aim it anywhere (server-side request forgery): only hosts listed in
 * CALLBACK_ALLOWED_HOSTS (`hooks.example.com`, `*.example.com` for its subdomains, `*` for any), over
 * https, or http to a listed host when CALLBACK_ALLOW_HTTP is true. No list, no callbacks.
 */
import { InvalidInputError } from '../shared/validation';

export interface CallbackPolicy {
  allowedHosts: readonly string[];
  allowHttp: boolean;
  /** Whether the worker can sign: without a secret no callback is accepted. */
  signing: boolean;
}

export const CALLBACK_URL_MAX = 2000;

export function hostAllowed(host: string, allowed: readonly string[]): boolean {
  const h = host.toLowerCase();
  return allowed.some((a) => a === '*' || a === h || (a.startsWith('*.') && h.endsWith(a.slice(1))));
}

/** The URL as it will be called, or an InvalidInputError that says what is wrong. */
export function assertCallbackUrl(value: unknown, policy: CallbackPolicy): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > CALLBACK_URL_MAX) {
    throw new InvalidInputError(`callbackUrl must be a URL of at most ${CALLBACK_URL_MAX} characters`);
  }
  if (policy.allowedHosts.length === 0 || !policy.signing) {
    throw new InvalidInputError('callbacks are off here: the service needs CALLBACK_ALLOWED_HOSTS and CALLBACK_SIGNING_SECRET set');
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidInputError(`callbackUrl is not a URL: ${JSON.stringify(value.slice(0, 100))}`);
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && policy.allowHttp)) {
    throw new InvalidInputError(`callbackUrl must use https${policy.allowHttp ? ' or http' : ''}, got ${url.protocol}`);
  }
  if (url.username || url.password) throw new InvalidInputError('callbackUrl must not carry credentials');
  if (!hostAllowed(url.hostname, policy.allowedHosts)) {
    throw new InvalidInputError(`callbackUrl's host ${url.hostname} is not in CALLBACK_ALLOWED_HOSTS`);
  }
  return url.toString();
}
