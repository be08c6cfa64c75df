/**
 * Who may do what. Each route of the HTTP API names the scopes that let a caller through; `admin`
 * lets a caller through everywhere. This module owns the list and the rule.
 */
export const SCOPES = ['ingest', 'messages', 'restore', 'export', 'privacy', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export const SCOPE_DESCRIPTIONS: Record<Scope, string> = {
  ingest: 'send interaction events (POST /v1/interactions)',
  messages: 'define, stop and resume messages, manage audiences, evaluate filters, read statuses and analytics',
  restore: 'restore one message or many by tag or ids, and follow those restores',
  export: "read user profiles, export users and a user's interactions, and download User Data CSVs",
  privacy: 'erase users (DELETE /v1/users/{id}) and follow erasures',
  admin: 'everything, including a stop dated in the past, retries and tokens',
};

export interface Principal {
  /** Stable identity: `token:<id>` for an API token, `oidc:<issuer>#<sub>` for a JWT. */
  id: string;
  /** What people call it: the token's name, or the JWT's e-mail or subject. */
  name: string;
  /** Where restore e-mails go when the caller names no one else. */
  email: string | null;
  scopes: readonly Scope[];
  source: 'api-token' | 'oidc';
}

export function isScope(value: string): value is Scope {
  return (SCOPES as readonly string[]).includes(value);
}

/** Parses `a,b c` into scopes; an unknown name is an error that lists the known ones. */
export function parseScopes(text: string): Scope[] {
  const names = text
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
  if (names.length === 0) throw new Error(`give at least one scope: ${SCOPES.join(', ')}`);
  const unknown = names.filter((n) => !isScope(n));
  if (unknown.length > 0)
    throw new Error(`unknown scope ${unknown.map((u) => JSON.stringify(u)).join(', ')}; known scopes: ${SCOPES.join(', ')}`);
  return [...new Set(names as Scope[])];
}

/**
 * The scope that lets the principal through, or null when none does. A principal that has one of the
 * route's scopes uses it (so the audit trail says `restore`, not `admin`, for a restore token).
 */
export function grantingScope(principal: Pick<Principal, 'scopes'>, required: readonly Scope[]): Scope | null {
  for (const s of required) if (principal.scopes.includes(s)) return s;
  return principal.scopes.includes('admin') ? 'admin' : null;
}
