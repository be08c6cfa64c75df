import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { apiLimitsFromEnv } from '../../src/api/limits';
import { oidcConfigFromEnv, scopesFromClaim } from '../../src/auth/oidc';
import { allowedEmailDomains, checkStoppedAt, PolicyError, restoreRecipient } from '../../src/auth/policy';
import { ROUTE_SCOPES, routeAccess, isAudited } from '../../src/auth/routeScopes';
import { grantingScope, parseScopes } from '../../src/auth/scopes';
import { parseSince } from '../../src/cli/commands/audit';
import { parseExpiry } from '../../src/cli/commands/tokens';

describe('scopes', () => {
  it('parses lists, refusing unknown names with the known ones', () => {
    assert.deepEqual(parseScopes('restore, export restore'), ['restore', 'export']);
    assert.throws(
      () => parseScopes('restore,root'),
      /unknown scope "root"; known scopes: ingest, messages, restore, export, privacy, admin/,
    );
    assert.throws(() => parseScopes(' '), /at least one scope/);
  });

  it('a route opens to one of its scopes, or admin; the scope used is the route’s own when the principal has it', () => {
    assert.equal(grantingScope({ scopes: ['restore'] }, ['messages', 'restore']), 'restore');
    assert.equal(grantingScope({ scopes: ['admin', 'restore'] }, ['restore']), 'restore');
    assert.equal(grantingScope({ scopes: ['admin'] }, ['export']), 'admin');
    assert.equal(grantingScope({ scopes: ['ingest'] }, ['export']), null);
  });

  it('every route has a rule; HEAD follows GET; writes and personal-data reads are audited', () => {
    assert.equal(routeAccess('HEAD', '/v1/users/:id'), ROUTE_SCOPES['GET /v1/users/:id']);
    assert.deepEqual(routeAccess('DELETE', '/v1/users/:id'), ['privacy']);
    assert.equal(routeAccess('DELETE', '/v1/messages/:kind/:id'), undefined);
    assert.equal(isAudited('POST', ['messages']), true);
    assert.equal(isAudited('GET', ['export']), true);
    assert.equal(isAudited('GET', ['messages']), false);
    assert.equal(isAudited('GET', ['privacy']), true);
  });
});

describe('whom a restore e-mails', () => {
  const alice = { name: 'alice', email: 'alice@corp.example' };
  it("the caller's own address by default, or one in an allowed domain", () => {
    assert.equal(restoreRecipient(alice, undefined, []), 'alice@corp.example');
    assert.equal(restoreRecipient(alice, 'ALICE@corp.example', []), 'alice@corp.example');
    assert.equal(restoreRecipient(alice, 'team@Ops.Example', ['ops.example']), 'team@Ops.Example');
  });
  it('anything else is a 400 that says what is allowed', () => {
    assert.throws(
      () => restoreRecipient(alice, 'x@attacker.example', ['ops.example']),
      (e: unknown) => e instanceof PolicyError && e.status === 400 && /ops\.example/.test(e.message),
    );
    assert.throws(() => restoreRecipient(alice, 'x@sub.ops.example', ['ops.example']), PolicyError);
    assert.throws(
      () => restoreRecipient({ name: 'svc', email: null }, undefined, []),
      /requestedBy is required: the token "svc" carries no e-mail/,
    );
  });
  it('EMAIL_ALLOWED_DOMAINS is a list of domain names', () => {
    assert.deepEqual(allowedEmailDomains({ EMAIL_ALLOWED_DOMAINS: ' Corp.Example, @ops.example ,' }), ['corp.example', 'ops.example']);
    assert.deepEqual(allowedEmailDomains({}), []);
    assert.throws(() => allowedEmailDomains({ EMAIL_ALLOWED_DOMAINS: 'corp' }), /not a domain name/);
  });
});

describe('backdated stops', () => {
  const now = new Date('2026-12-06T12:00:00Z');
  it('a few minutes back is normal; further back needs admin', () => {
    checkStoppedAt({ scopes: ['messages'] }, undefined, now);
    checkStoppedAt({ scopes: ['messages'] }, '2026-12-06T11:56:00Z', now);
    checkStoppedAt({ scopes: ['messages'] }, '2027-01-01T00:00:00Z', now);
    assert.throws(
      () => checkStoppedAt({ scopes: ['messages'] }, '2026-12-06T11:54:00Z', now),
      (e: unknown) => e instanceof PolicyError && e.status === 403,
    );
    checkStoppedAt({ scopes: ['admin'] }, '2020-01-01T00:00:00Z', now);
  });
});

describe('OIDC settings and claims', () => {
  it('all three of issuer, audience and key set, or none', () => {
    assert.equal(oidcConfigFromEnv({}), null);
    assert.throws(() => oidcConfigFromEnv({ OIDC_ISSUER: 'https://idp.example/' }), /OIDC_AUDIENCE, OIDC_JWKS_URL unset/);
    assert.throws(
      () => oidcConfigFromEnv({ OIDC_ISSUER: 'https://idp.example/', OIDC_AUDIENCE: 'a', OIDC_JWKS_URL: 'http://idp.example/keys' }),
      /must be https/,
    );
    const c = oidcConfigFromEnv({
      OIDC_ISSUER: 'https://idp.example/',
      OIDC_AUDIENCE: 'a',
      OIDC_JWKS_URL: 'https://idp.example/keys',
      OIDC_SCOPES_CLAIM: 'scp',
    });
    assert.equal(c?.scopesClaim, 'scp');
    assert.equal(c?.scopePrefix, 'interaction-data:');
  });
  it("only this service's scopes count, from a string or an array claim", () => {
    assert.deepEqual(scopesFromClaim('openid interaction-data:restore other:admin interaction-data:nope', 'interaction-data:'), [
      'restore',
    ]);
    assert.deepEqual(scopesFromClaim(['interaction-data:admin', 7], 'interaction-data:'), ['admin']);
    assert.deepEqual(scopesFromClaim(['export'], ''), ['export']);
    assert.deepEqual(scopesFromClaim(undefined, ''), []);
  });
});

describe('limits and CLI times', () => {
  it('limits from the environment, with clear errors', () => {
    assert.equal(apiLimitsFromEnv({ API_RATE_LIMIT: '50', API_RATE_LIMIT_WINDOW: '10s' }).rateLimitWindowMs, 10_000);
    assert.throws(() => apiLimitsFromEnv({ BULK_RESTORES_MAX_RUNNING: '0' }), /BULK_RESTORES_MAX_RUNNING must be a positive integer/);
    assert.throws(() => apiLimitsFromEnv({ API_REQUEST_TIMEOUT: '1 month' }), /API_REQUEST_TIMEOUT/);
  });
  it('--since and --expires take a duration or a date', () => {
    const now = new Date('2026-12-06T12:00:00Z');
    assert.equal(parseSince('24h', now).toISOString(), '2026-12-05T12:00:00.000Z');
    assert.equal(parseSince('2026-12-01', now).toISOString(), '2026-12-01T00:00:00.000Z');
    assert.equal(parseExpiry('90d', now).toISOString(), '2027-03-06T12:00:00.000Z');
    assert.throws(() => parseSince('lately', now), /--since/);
  });
});
