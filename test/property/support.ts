/**
 * Shared by the property-based tests of the HTTP API and the CLI: inputs generated from the API's own
 * JSON schemas (so that valid-looking requests reach deep, down to SQL), hostile strings mixed in at
 * any field, and the three checks every request ends with:
 *  - no 5xx;
 *  - a refused request wrote nothing (the data tables' checksums are unchanged, no actor was started);
 *  - no input reached SQL as text: every SQL statement the API and the worker send is captured, and no
 *    distinctive token of the input may appear in its text (it may only travel as a bound parameter).
 */
import fc from 'fast-check';
import type { Knex } from 'knex';
import type { Db } from '../../src/db/knex';

/** Runs per property: a quick sample in `npm test`, many more under `npm run test:faults`. */
export const PROPERTY_RUNS = Number(process.env.PROPERTY_RUNS) || (process.env.FAULTS_MODE === 'full' ? 1_000 : 100);

/** A seed to replay: FAULTS_SEED when given, else fast-check picks one and prints it on failure. */
export const PROPERTY_SEED = process.env.FAULTS_SEED ? Number(process.env.FAULTS_SEED) : undefined;

/** Inputs attackers and broken clients send. Each gets a unique token appended, see withToken. */
const HOSTILE = [
  "' OR '1'='1",
  "'; DROP TABLE interactions; --",
  '" OR ""="',
  "\\'; SELECT SLEEP(5); --",
  '1; DELETE FROM messages',
  "%' UNION SELECT id, name FROM audiences -- ",
  '`id`',
  '??',
  '?',
  ':name',
  '$1',
  '\\',
  '\u0000',
  '\u202e',
  '\ud800',
  '${7*7}',
  '{{7*7}}',
  '<script>alert(1)</script>',
  '../../../etc/passwd',
  '__proto__',
  'constructor',
  '\r\nSet-Cookie: x=1',
  '😀'.repeat(40),
  'a'.repeat(300),
  ' ',
  '',
] as const;

/** Alphanumeric runs of 8+ characters with a digit or a capital: distinctive enough that seeing one inside SQL text means the input was pasted there. */
export function distinctiveTokens(value: string): string[] {
  return (value.match(/[A-Za-z0-9]{8,}/g) ?? []).filter((t) => /[0-9A-Z]/.test(t));
}

/** A short random token, so that hostile constants are traceable too. */
const token = fc.stringMatching(/^[A-Z][a-z0-9]{3}[0-9][A-Za-z0-9]{4}$/);

export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.tuple(fc.constantFrom(...HOSTILE), token).map(([h, t]) => `${h}${t}`) },
  { weight: 1, arbitrary: fc.constantFrom(...HOSTILE) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 80 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 80 }) },
);

/** Any JSON value a broken client might send where an object was expected. */
export const hostileJson: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  hostileString,
  fc.constant(null),
  fc.array(hostileString, { maxLength: 3 }),
  fc.dictionary(fc.oneof(hostileString, fc.constantFrom('__proto__', 'constructor', 'prototype')), fc.jsonValue({ maxDepth: 2 }), {
    maxKeys: 4,
  }),
);

export interface JsonSchema {
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  format?: string;
}

/**
 * Names of things the test created first (messages, users, audiences...). Generated strings that fit
 * a field's pattern are drawn from these half of the time, so that requests find what they look up
 * and run their real queries instead of stopping at "not found".
 */
let vocabulary: readonly string[] = [];
export function useVocabulary(words: readonly string[]): void {
  vocabulary = words;
}

/** An ISO instant (what an instant pattern describes), in the recent past. */
const instant = fc
  .date({ noInvalidDate: true, min: new Date(Date.UTC(2024, 0, 1)), max: new Date(Date.now() - 60_000) })
  .map((d) => d.toISOString());

function patternArbitrary(pattern: string, maxLength: number | undefined): fc.Arbitrary<string> {
  let re: RegExp;
  try {
    re = new RegExp(pattern, /\\p\{/.test(pattern) ? 'u' : '');
  } catch {
    return fc.string({ maxLength: maxLength ?? 40 });
  }
  if (pattern.includes('\\d{4}-\\d{2}-\\d{2}T'))
    return fc.oneof({ weight: 4, arbitrary: instant }, { weight: 1, arbitrary: fc.stringMatching(re) });
  const matching = maxLength === undefined ? fc.stringMatching(re) : fc.stringMatching(re).filter((s) => s.length <= maxLength);
  const known = vocabulary.filter((w) => re.test(w) && (maxLength === undefined || w.length <= maxLength));
  return known.length ? fc.oneof(fc.constantFrom(...known), matching) : matching;
}

/**
 * Values that mostly satisfy `schema` (so they pass validation and reach the code behind it), with a
 * hostile value swapped in at any field now and then (`hostility` is the chance per field).
 */
export function fromSchema(schema: JsonSchema | undefined, hostility = 0.15, depth = 0): fc.Arbitrary<unknown> {
  const valid = validFromSchema(schema ?? {}, hostility, depth);
  if (hostility <= 0) return valid;
  const weight = Math.max(1, Math.round(hostility * 100));
  return fc.oneof({ weight: 100 - weight, arbitrary: valid }, { weight, arbitrary: depth > 2 ? hostileString : hostileJson });
}

function validFromSchema(schema: JsonSchema, hostility: number, depth: number): fc.Arbitrary<unknown> {
  if (schema.const !== undefined) return fc.constant(schema.const);
  if (schema.enum) return fc.constantFrom(...schema.enum);
  const options = schema.anyOf ?? schema.oneOf;
  if (options?.length) return fc.oneof(...options.map((o) => validFromSchema(o, hostility, depth)));
  if (schema.allOf?.length) return validFromSchema(Object.assign({}, ...schema.allOf) as JsonSchema, hostility, depth);
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type ?? (schema.properties ? 'object' : undefined)) {
    case 'string': {
      if (schema.pattern) return patternArbitrary(schema.pattern, schema.maxLength);
      if (schema.format === 'date-time')
        return fc.date({ noInvalidDate: true, min: new Date(0), max: new Date(4102444800000) }).map((d) => d.toISOString());
      return fc.string({ minLength: schema.minLength ?? 0, maxLength: Math.min(schema.maxLength ?? 40, 60) });
    }
    case 'integer':
      return fc.integer({ min: schema.minimum ?? -1_000, max: schema.maximum ?? 1_000_000 });
    case 'number':
      return fc.double({ min: schema.minimum ?? -1e6, max: schema.maximum ?? 1e6, noNaN: true });
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'array':
      return fc.array(fromSchema(schema.items, hostility, depth + 1), {
        minLength: schema.minItems ?? 0,
        maxLength: Math.min(schema.maxItems ?? 4, Math.max(schema.minItems ?? 0, 4)),
      });
    case 'object': {
      const props = schema.properties ?? {};
      const record: Record<string, fc.Arbitrary<unknown>> = {};
      for (const [name, s] of Object.entries(props)) record[name] = fromSchema(s, hostility, depth + 1);
      const base = fc.record(record, { requiredKeys: (schema.required ?? []).filter((k) => k in props) });
      if (hostility <= 0) return base;
      // Now and then an extra, unknown property.
      return fc.tuple(base, fc.option(fc.tuple(hostileString, hostileJson), { freq: 8 })).map(([obj, extra]) => {
        const out: Record<string, unknown> = { ...(obj as Record<string, unknown>) };
        if (extra && extra[0] !== '__proto__') out[extra[0]] = extra[1];
        return out;
      });
    }
    default:
      return fc.jsonValue({ maxDepth: 2 });
  }
}

/** Every string inside a value (keys included), for the SQL check. */
export function stringsIn(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const v of value) stringsIn(v, out);
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      out.push(k);
      stringsIn(v, out);
    }
  }
  return out;
}

/** Every statement a knex instance sends, text and bindings apart. */
export class SqlCapture {
  readonly statements: { sql: string; bindings: string[] }[] = [];
  constructor(dbs: readonly Knex[]) {
    for (const db of dbs) {
      db.on('query', (q: { sql?: string; bindings?: unknown[] }) => {
        this.statements.push({ sql: String(q.sql ?? ''), bindings: (q.bindings ?? []).map((b) => String(b)) });
      });
    }
  }
  mark(): number {
    return this.statements.length;
  }
  /** Tokens of `inputs` that appear in the text of a statement sent since `from`, and how many reached SQL as bindings. */
  check(from: number, inputs: readonly string[]): { leaked: { token: string; sql: string }[]; bound: number } {
    const tokens = [...new Set(inputs.flatMap(distinctiveTokens))];
    const leaked: { token: string; sql: string }[] = [];
    let bound = 0;
    for (const st of this.statements.slice(from)) {
      for (const t of tokens) {
        if (st.sql.includes(t)) leaked.push({ token: t, sql: st.sql.slice(0, 300) });
        else if (st.bindings.some((b) => b.includes(t))) bound += 1;
      }
    }
    return { leaked, bound };
  }
}

/**
 * A fingerprint of the tables requests write (CHECKSUM TABLE), leaving out those the actors write on
 * their own schedule (availability, archives, e-mails), which are not the request's doing.
 */
export async function dataFingerprint(db: Db, exclude: readonly string[]): Promise<string> {
  const [tables] = (await db.raw(
    `SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME`,
  )) as [{ t: string }[]];
  const names = tables.map((r) => r.t).filter((t) => !exclude.includes(t) && !t.startsWith('knex_'));
  if (names.length === 0) return '';
  const [sums] = (await db.raw(`CHECKSUM TABLE ${names.map(() => '??').join(', ')}`, names)) as [
    { Table: string; Checksum: string | number | null }[],
  ];
  return sums.map((s) => `${s.Table}=${s.Checksum}`).join(';');
}

/** Tables the actors and the worker write by themselves, outside any request. */
export const WORKER_TABLES = [
  'message_availability',
  'archive_manifests',
  'archive_chunks',
  'email_outbox',
  'bulk_restore_items',
  'bulk_restores',
];
