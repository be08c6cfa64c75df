/**
 * Turns an `Authorization` header into a principal: a JWT (three dot-separated parts) goes to the
 * identity provider's verifier, anything else to the API tokens kept in MySQL.
 */
import type { Knex } from 'knex';
import { ApiTokenStore, principalOf } from './apiTokens';
import { OidcVerifier, oidcConfigFromEnv, type OidcConfig } from './oidc';
import type { Principal } from './scopes';

export type Authentication = { ok: true; principal: Principal } | { ok: false; reason: string; unavailable?: boolean };

export interface Authenticator {
  authenticate(authorization: string | undefined): Promise<Authentication>;
}

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

export class BearerAuthenticator implements Authenticator {
  private readonly oidc: OidcVerifier | null;

  constructor(
    private readonly tokens: ApiTokenStore,
    oidc: OidcConfig | null,
  ) {
    this.oidc = oidc ? new OidcVerifier(oidc) : null;
  }

  async authenticate(authorization: string | undefined): Promise<Authentication> {
    if (!authorization) return { ok: false, reason: 'this route needs a token: send "Authorization: Bearer <token>"' };
    const match = /^Bearer[ ]+(\S+)\s*$/i.exec(authorization);
    if (!match) return { ok: false, reason: 'the Authorization header must read "Bearer <token>"' };
    const token = match[1];
    if (JWT_SHAPE.test(token)) {
      if (!this.oidc) return { ok: false, reason: 'a JWT was sent but no identity provider is configured (OIDC_ISSUER)' };
      return this.oidc.verify(token);
    }
    const verdict = await this.tokens.verify(token);
    return verdict.ok ? { ok: true, principal: principalOf(verdict.record) } : verdict;
  }
}

/** The authenticator the API uses: tokens in this database, and OIDC when the environment configures it. */
export function authenticatorFor(db: Knex, env: NodeJS.ProcessEnv = process.env): BearerAuthenticator {
  return new BearerAuthenticator(new ApiTokenStore(db), oidcConfigFromEnv(env));
}
