/** Tokens for tests: a real token store in the test's database, and requests that carry a token. */
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import type { Knex } from 'knex';
import { ApiTokenStore } from '../../src/auth/apiTokens';
import { BearerAuthenticator } from '../../src/auth/authenticator';
import type { OidcConfig } from '../../src/auth/oidc';
import type { Scope } from '../../src/auth/scopes';

export interface TestAuth {
  auth: BearerAuthenticator;
  tokens: ApiTokenStore;
  /** A token with every scope (admin), e-mail ops@example.com. */
  adminToken: string;
  /** A new token with these scopes (and e-mail, default `<first scope>@example.com`). */
  token(scopes: readonly Scope[], email?: string | null): Promise<string>;
}

export async function testAuth(db: Knex, oidc: OidcConfig | null = null): Promise<TestAuth> {
  const tokens = new ApiTokenStore(db);
  const make = async (scopes: readonly Scope[], email?: string | null) =>
    (
      await tokens.create({
        name: `test-${scopes.join('-')}`,
        scopes,
        email: email === undefined ? `${scopes[0] ?? 'nobody'}@example.com` : email,
      })
    ).token;
  return { auth: new BearerAuthenticator(tokens, oidc), tokens, adminToken: await make(['admin'], 'ops@example.com'), token: make };
}

export const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

interface Injectable {
  inject(opts: InjectOptions): Promise<LightMyRequestResponse>;
}

/** The app as one caller sees it: every request carries the token unless it sets its own Authorization. */
export function asCaller(app: Injectable, token: string): Injectable {
  return { inject: (opts: InjectOptions) => app.inject({ ...opts, headers: { ...bearer(token), ...(opts.headers ?? {}) } }) };
}
