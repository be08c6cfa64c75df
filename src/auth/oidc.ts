/**
 * JWTs from the user's identity provider: signature checked against the provider's key set (fetched
 * and cached by jose), then issuer, audience, expiry and not-before; scopes come from one claim.
 */
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { isScope, type Principal, type Scope } from './scopes';

export interface OidcConfig {
  issuer: string;
  audience: string;
  jwksUrl: string;
  /** Claim holding the scopes: a space-separated string (OAuth's `scope`) or an array. */
  scopesClaim: string;
  /** Prefix of this service's scopes in that claim, e.g. `interaction-data:` for `interaction-data:restore`. */
  scopePrefix: string;
  /** Seconds of clock skew tolerated on exp and nbf. */
  clockToleranceSeconds: number;
}

/** `unavailable`: the identity provider's key set could not be fetched, so nothing can be said of the token. */
export type OidcVerdict = { ok: true; principal: Principal } | { ok: false; reason: string; unavailable?: boolean };

/** OIDC settings from the environment, or null when OIDC_ISSUER is unset; a partial set is an error. */
export function oidcConfigFromEnv(env: NodeJS.ProcessEnv = process.env): OidcConfig | null {
  const issuer = env.OIDC_ISSUER?.trim();
  const audience = env.OIDC_AUDIENCE?.trim();
  const jwksUrl = env.OIDC_JWKS_URL?.trim();
  if (!issuer && !audience && !jwksUrl) return null;
  const missing = [!issuer && 'OIDC_ISSUER', !audience && 'OIDC_AUDIENCE', !jwksUrl && 'OIDC_JWKS_URL'].filter(Boolean);
  if (missing.length > 0) throw new Error(`OIDC needs OIDC_ISSUER, OIDC_AUDIENCE and OIDC_JWKS_URL together; ${missing.join(', ')} unset`);
  try {
    const url = new URL(jwksUrl as string);
    if (url.protocol !== 'https:' && !['localhost', '127.0.0.1', '[::1]'].includes(url.hostname)) {
      throw new Error('it must be https (plain http only for localhost)');
    }
  } catch (err) {
    throw new Error(`OIDC_JWKS_URL ${JSON.stringify(jwksUrl)} is not usable: ${(err as Error).message}`, { cause: err });
  }
  const tolerance = env.OIDC_CLOCK_TOLERANCE_SECONDS ? Number(env.OIDC_CLOCK_TOLERANCE_SECONDS) : 30;
  if (!Number.isInteger(tolerance) || tolerance < 0)
    throw new Error(`OIDC_CLOCK_TOLERANCE_SECONDS must be a whole number of seconds, got "${env.OIDC_CLOCK_TOLERANCE_SECONDS}"`);
  return {
    issuer: issuer as string,
    audience: audience as string,
    jwksUrl: jwksUrl as string,
    scopesClaim: env.OIDC_SCOPES_CLAIM?.trim() || 'scope',
    scopePrefix: env.OIDC_SCOPE_PREFIX ?? 'interaction-data:',
    clockToleranceSeconds: tolerance,
  };
}

/** This service's scopes among the claim's values; other applications' scopes are ignored. */
export function scopesFromClaim(value: unknown, prefix: string): Scope[] {
  const names =
    typeof value === 'string' ? value.split(/\s+/) : Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
  const scopes = new Set<Scope>();
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const bare = name.slice(prefix.length);
    if (isScope(bare)) scopes.add(bare);
  }
  return [...scopes];
}

export class OidcVerifier {
  private readonly keys: ReturnType<typeof createRemoteJWKSet>;

  constructor(readonly config: OidcConfig) {
    this.keys = createRemoteJWKSet(new URL(config.jwksUrl));
  }

  async verify(token: string): Promise<OidcVerdict> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.keys, {
        issuer: this.config.issuer,
        audience: this.config.audience,
        clockTolerance: this.config.clockToleranceSeconds,
        // Asymmetric algorithms only: an HMAC "key" would be the public key set itself.
        algorithms: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'],
      }));
    } catch (err) {
      return describeJwtFailure(err);
    }
    if (typeof payload.sub !== 'string' || payload.sub === '') return { ok: false, reason: 'the JWT has no subject (sub)' };
    const email = typeof payload.email === 'string' && payload.email_verified !== false ? payload.email : null;
    return {
      ok: true,
      principal: {
        id: `oidc:${payload.sub}`,
        name: email ?? payload.sub,
        email,
        scopes: scopesFromClaim(payload[this.config.scopesClaim], this.config.scopePrefix),
        source: 'oidc',
      },
    };
  }
}

function describeJwtFailure(err: unknown): { ok: false; reason: string; unavailable?: boolean } {
  const no = (reason: string) => ({ ok: false as const, reason });
  if (err instanceof joseErrors.JWTExpired) return no('the JWT has expired');
  if (err instanceof joseErrors.JWTClaimValidationFailed) return no(`the JWT's ${err.claim} claim is not accepted here`);
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return no("the JWT's signature does not verify");
  if (err instanceof joseErrors.JWKSNoMatchingKey) return no("the JWT was not signed by a key of the identity provider's key set");
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return no("the JWT's algorithm is not accepted");
  if (
    err instanceof joseErrors.JWKSTimeout ||
    err instanceof joseErrors.JWKSInvalid ||
    err instanceof TypeError ||
    (err instanceof Error && /fetch|ECONNREFUSED|ENOTFOUND|network/i.test(err.message))
  ) {
    return { ok: false, reason: "the identity provider's key set cannot be fetched right now; try again later", unavailable: true };
  }
  if (err instanceof joseErrors.JOSEError) return no('the JWT is not valid');
  return no('the JWT is not valid');
}
