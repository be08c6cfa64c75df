/**
 * API tokens kept in MySQL. A token reads `idt_<id>_<secret>`: the id finds the row, the secret is
 * compared with the SHA-256 kept there in constant time, and the clear secret exists only in what
 * `create` returns once.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Knex } from 'knex';
import { timeOf } from '../dataplane/sql';
import { parseScopes, type Principal, type Scope } from './scopes';

export const TOKEN_PREFIX = 'idt_';
/** The row a bootstrap token (`API_ADMIN_TOKEN`, or the one `npm start` makes) is kept in. */
export const BOOTSTRAP_TOKEN_ID = 'bootstrap';
const TOKEN_PATTERN = /^idt_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
const MIN_BOOTSTRAP_LENGTH = 32;

export interface ApiTokenRecord {
  id: string;
  name: string;
  scopes: Scope[];
  email: string | null;
  createdAt: Date;
  createdBy: string;
  expiresAt: Date | null;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
}

export interface NewToken {
  name: string;
  scopes: readonly Scope[];
  email?: string | null;
  expiresAt?: Date | null;
  createdBy?: string;
}

export class TokenError extends Error {
  override name = 'TokenError';
}

interface TokenRow {
  id: string;
  name: string;
  secret_sha256: string;
  scopes: string;
  email: string | null;
  created_at: Date | string;
  created_by: string;
  expires_at: Date | string | null;
  revoked_at: Date | string | null;
  last_used_at: Date | string | null;
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && timingSafeEqual(x, y);
}

function toRecord(row: TokenRow): ApiTokenRecord {
  return {
    id: row.id,
    name: row.name,
    scopes: parseScopes(row.scopes),
    email: row.email,
    createdAt: timeOf(row.created_at) as Date,
    createdBy: row.created_by,
    expiresAt: timeOf(row.expires_at),
    revokedAt: timeOf(row.revoked_at),
    lastUsedAt: timeOf(row.last_used_at),
  };
}

/** A token as callers are shown it: everything but the secret, times in ISO-8601. */
export function tokenView(r: ApiTokenRecord) {
  return {
    id: r.id,
    name: r.name,
    scopes: [...r.scopes],
    email: r.email,
    createdAt: r.createdAt.toISOString(),
    createdBy: r.createdBy,
    expiresAt: r.expiresAt?.toISOString() ?? null,
    revokedAt: r.revokedAt?.toISOString() ?? null,
    lastUsedAt: r.lastUsedAt?.toISOString() ?? null,
  };
}

export function principalOf(record: ApiTokenRecord): Principal {
  return { id: `token:${record.id}`, name: record.name, email: record.email, scopes: record.scopes, source: 'api-token' };
}

/** Why a token was not accepted, in words a caller can act on (never echoing the token). */
export type TokenVerdict = { ok: true; record: ApiTokenRecord } | { ok: false; reason: string };

export class ApiTokenStore {
  /** last_used_at is written at most this often per token, not on every request. */
  private readonly touched = new Map<string, number>();

  constructor(
    private readonly db: Knex,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async create(spec: NewToken): Promise<{ token: string; record: ApiTokenRecord }> {
    const name = spec.name.trim();
    if (!/^[\w.@:-]{1,128}$/.test(name))
      throw new TokenError(`a token name is 1 to 128 letters, digits or . _ - @ :, got ${JSON.stringify(spec.name)}`);
    if (spec.scopes.length === 0) throw new TokenError('a token needs at least one scope');
    const expiresAt = spec.expiresAt ?? null;
    if (expiresAt && expiresAt.getTime() <= this.now().getTime())
      throw new TokenError(`the expiry ${expiresAt.toISOString()} is already past`);
    const id = randomBytes(8).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const row: TokenRow = {
      id,
      name,
      secret_sha256: sha256(secret),
      scopes: [...spec.scopes].join(' '),
      email: spec.email ?? null,
      created_at: this.now(),
      created_by: spec.createdBy ?? '',
      expires_at: expiresAt,
      revoked_at: null,
      last_used_at: null,
    };
    await this.db('api_tokens').insert(row);
    return { token: `${TOKEN_PREFIX}${id}_${secret}`, record: toRecord(row) };
  }

  /**
   * Keeps the bootstrap admin token: any string of at least 32 characters (so an operator can pass
   * one from a secret manager). It replaces the previous bootstrap token, which stops working.
   */
  async putBootstrap(token: string, createdBy = 'bootstrap'): Promise<ApiTokenRecord> {
    if (token.length < MIN_BOOTSTRAP_LENGTH)
      throw new TokenError(`API_ADMIN_TOKEN must be at least ${MIN_BOOTSTRAP_LENGTH} characters long`);
    const row = {
      id: BOOTSTRAP_TOKEN_ID,
      name: 'bootstrap-admin',
      secret_sha256: sha256(token),
      scopes: 'admin',
      email: null,
      created_at: this.now(),
      created_by: createdBy,
      expires_at: null,
      revoked_at: null,
    };
    const existing = await this.db<TokenRow>('api_tokens').where({ id: BOOTSTRAP_TOKEN_ID }).first();
    if (!existing) await this.db('api_tokens').insert(row);
    else if (existing.secret_sha256 !== row.secret_sha256 || existing.revoked_at !== null) {
      await this.db('api_tokens').where({ id: BOOTSTRAP_TOKEN_ID }).update(row);
    }
    const saved = await this.db<TokenRow>('api_tokens').where({ id: BOOTSTRAP_TOKEN_ID }).first();
    return toRecord(saved as TokenRow);
  }

  async verify(token: string): Promise<TokenVerdict> {
    const match = TOKEN_PATTERN.exec(token);
    const [id, secret] = match ? [match[1], match[2]] : [BOOTSTRAP_TOKEN_ID, token];
    const row = await this.db<TokenRow>('api_tokens').where({ id }).first();
    if (!row || !sameHash(row.secret_sha256, sha256(secret))) return { ok: false, reason: 'the token is not valid' };
    const record = toRecord(row);
    if (record.revokedAt) return { ok: false, reason: `the token "${row.name}" was revoked` };
    const now = this.now();
    if (record.expiresAt && record.expiresAt.getTime() <= now.getTime())
      return { ok: false, reason: `the token "${row.name}" expired at ${record.expiresAt.toISOString()}` };
    const last = this.touched.get(id) ?? 0;
    if (now.getTime() - last > 60_000) {
      this.touched.set(id, now.getTime());
      await this.db('api_tokens').where({ id }).update({ last_used_at: now });
    }
    return { ok: true, record };
  }

  async list(opts: { includeRevoked?: boolean } = {}): Promise<ApiTokenRecord[]> {
    const q = this.db<TokenRow>('api_tokens').orderBy('created_at').orderBy('id');
    if (!opts.includeRevoked) q.whereNull('revoked_at');
    return (await q).map(toRecord);
  }

  /** Revokes by id or by name (a name must be unambiguous). Revoking twice changes nothing. */
  async revoke(idOrName: string): Promise<ApiTokenRecord> {
    const key = idOrName.startsWith(TOKEN_PREFIX) ? (TOKEN_PATTERN.exec(idOrName)?.[1] ?? idOrName) : idOrName;
    let rows = await this.db<TokenRow>('api_tokens').where({ id: key });
    if (rows.length === 0) rows = await this.db<TokenRow>('api_tokens').where({ name: key }).whereNull('revoked_at');
    if (rows.length === 0) throw new TokenError(`no token with id or name ${JSON.stringify(idOrName)}`);
    if (rows.length > 1)
      throw new TokenError(
        `${rows.length} tokens are named ${JSON.stringify(idOrName)}; revoke one by its id (${rows.map((r) => r.id).join(', ')})`,
      );
    const row = rows[0];
    if (!row.revoked_at) await this.db('api_tokens').where({ id: row.id }).whereNull('revoked_at').update({ revoked_at: this.now() });
    return toRecord((await this.db<TokenRow>('api_tokens').where({ id: row.id }).first()) as TokenRow);
  }
}
