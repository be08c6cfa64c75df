/**
 * Registers the contract's custom search attributes on a namespace. Safe to call on every start:
 * against a fresh server, a restarted dev server whose SQLite file already has them, or several
 * processes starting at the same time.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Connection } from '@temporalio/client';
import { SearchAttributeType } from '@temporalio/common';
// The SDK exports these for registering attributes, though not from its package index.
import { encodeSearchAttributeIndexedValueType, type SearchAttributeKey } from '@temporalio/common/lib/search-attributes';
import { ALL_SEARCH_ATTRIBUTES } from '../shared/searchAttributes';
import type { Logger } from '../logger';

type AnyKey = SearchAttributeKey<SearchAttributeType>;

/** Wire enum value → readable name, for error messages. */
const TYPE_NAME_BY_WIRE = new Map<number, string>(
  Object.values(SearchAttributeType).map((t) => [Number(encodeSearchAttributeIndexedValueType(t)), t]),
);

function wireType(t: SearchAttributeType): number {
  const v = encodeSearchAttributeIndexedValueType(t);
  if (v === undefined || v === null) throw new Error(`unknown search attribute type ${t}`);
  return Number(v);
}

function typeName(wire: number | undefined | null): string {
  return (wire !== undefined && wire !== null && TYPE_NAME_BY_WIRE.get(Number(wire))) || `type #${wire}`;
}

async function listCustom(connection: Connection, namespace: string): Promise<Record<string, number>> {
  const res = await connection.operatorService.listSearchAttributes({ namespace });
  const out: Record<string, number> = {};
  for (const [name, t] of Object.entries(res.customAttributes ?? {})) out[name] = Number(t);
  // System attributes cannot be redefined; treat a clash with one like a clash with a custom one.
  for (const [name, t] of Object.entries(res.systemAttributes ?? {})) out[name] ??= Number(t);
  return out;
}

/** Returns the keys still missing; throws when a name is taken with another type, which only a person can fix. */
function diff(existing: Record<string, number>, wanted: readonly AnyKey[], namespace: string): AnyKey[] {
  const missing: AnyKey[] = [];
  for (const key of wanted) {
    const have = existing[key.name];
    if (have === undefined) {
      missing.push(key);
    } else if (have !== wireType(key.type)) {
      throw new Error(
        `Search attribute ${key.name} already exists in namespace "${namespace}" as ${typeName(have)}, but this service needs ` +
          `${key.type}. Temporal cannot change the type of an attribute: use a fresh namespace or dev-server database, ` +
          `or remove it (temporal operator search-attribute remove --name ${key.name}) if nothing else uses it.`,
      );
    }
  }
  return missing;
}

/** gRPC status code; @grpc/grpc-js is only a transitive dependency, so not imported for one number. */
const GRPC_ALREADY_EXISTS = 6;

function isAlreadyExists(err: unknown): boolean {
  const e = err as { code?: number; message?: string; details?: string };
  return e?.code === GRPC_ALREADY_EXISTS || /already exists/i.test(`${e?.message ?? ''} ${e?.details ?? ''}`);
}

export async function ensureSearchAttributes(
  connection: Connection,
  namespace: string,
  opts: { attributes?: readonly AnyKey[]; timeoutMs?: number; log?: Logger } = {},
): Promise<void> {
  const wanted = opts.attributes ?? ALL_SEARCH_ATTRIBUTES;
  const timeoutMs = opts.timeoutMs ?? 30_000;

  const missing = diff(await listCustom(connection, namespace), wanted, namespace);
  if (missing.length === 0) return;

  const searchAttributes: Record<string, number> = {};
  for (const key of missing) searchAttributes[key.name] = wireType(key.type);
  try {
    await connection.operatorService.addSearchAttributes({ namespace, searchAttributes });
    opts.log?.info({ namespace, added: Object.keys(searchAttributes) }, 'registered search attributes');
  } catch (err) {
    // Another process won the race; the check below still verifies the types it registered.
    if (!isAlreadyExists(err)) {
      throw new Error(
        `Could not register search attributes ${Object.keys(searchAttributes).join(', ')} in namespace "${namespace}": ${(err as Error).message}`,
        { cause: err },
      );
    }
  }

  // Registration is asynchronous on the server side; starting a workflow that sets an attribute the
  // frontend does not yet know about fails, so wait until the listing shows all of them.
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const stillMissing = diff(await listCustom(connection, namespace), wanted, namespace);
    if (stillMissing.length === 0) return;
    if (Date.now() > deadline) {
      throw new Error(
        `Search attributes ${stillMissing.map((k) => k.name).join(', ')} were registered in namespace "${namespace}" ` +
          `but are still not listed after ${timeoutMs} ms.`,
      );
    }
    await sleep(200);
  }
}
