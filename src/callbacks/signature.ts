/**
 * How a callback proves where it came from: `Interaction-Data-Signature: t=<unix seconds>,v1=<hex>`, the
 * HMAC-SHA256 of `<t>.<raw body>` under the shared secret (CALLBACK_SIGNING_SECRET), as Stripe and
 * GitHub sign their webhooks. The timestamp is signed too, so a receiver can refuse an old delivery
 * replayed; `verifyCallbackSignature` is what a receiver runs (docs/API.md shows it).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'interaction-data-signature';

export function signCallback(secret: string, body: string, unixSeconds: number): string {
  const mac = createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex');
  return `t=${unixSeconds},v1=${mac}`;
}

/** True when `header` signs `body` under `secret` and its timestamp is within `toleranceSeconds` of `nowSeconds`. */
export function verifyCallbackSignature(
  secret: string,
  header: string | undefined,
  body: string,
  nowSeconds = Math.floor(Date.now() / 1000),
  toleranceSeconds = 300,
): boolean {
  if (!header) return false;
  const parts = new Map(header.split(',').map((p) => p.trim().split('=', 2) as [string, string]));
  const t = Number(parts.get('t'));
  const given = parts.get('v1') ?? '';
  if (!Number.isInteger(t) || Math.abs(nowSeconds - t) > toleranceSeconds || !/^[0-9a-f]{64}$/.test(given)) return false;
  const expected = signCallback(secret, body, t).slice(`t=${t},v1=`.length);
  return timingSafeEqual(Buffer.from(given, 'hex'), Buffer.from(expected, 'hex'));
}
