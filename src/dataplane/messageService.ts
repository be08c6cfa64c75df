/**
 * Creating and updating campaigns and Canvases, and what their status changes mean for their actors
 * and audiences.
 *
 * Order of effects, so that a retried request converges after any partial failure:
 *   1. checks and rule-9 guards (nothing changed yet);
 *   2. signals that change the actor (details, stop, resume) — harmless when repeated;
 *   3. one MySQL transaction: the definition, and the message's own audiences following its status
 *      (active exactly while the message is active);
 *   4. referencesChanged to the messages those audiences filter on (after commit: actors re-count).
 */
import type { Db } from '../db/knex';
import { ResumeRefusedError } from '../client/lifecycleClient';
import { RESUME_REFUSED_MESSAGE, type MessageKind, type MessageRef } from '../shared/types';
import { assertTag } from '../shared/validation';
import { activeTargets, loadAudiences, refuseExpired, type Audience } from './audiences';
import { badRequest, conflict, notFound } from './errors';
import { parseFilter } from './filters/definitions';
import { expiredUses } from './guards';
import { signalReferencesChanged, type DataPlaneLifecycle, type SignalReport } from './lifecyclePort';
import { loadMessage, loadMessages, writeMessage, type StoredMessage } from './messages';
import { refKey, type Component, type MessageDefinition, type MessageStatus } from './model';
import { availabilityOf, ER_DUP_ENTRY, sqlErrno } from './sql';

export interface MessageInput {
  name?: string;
  tags?: string[];
  status?: MessageStatus;
  variants?: Component[];
  steps?: Component[];
  variations?: Component[];
}

export interface SavedMessage {
  message: StoredMessage;
  references: SignalReport;
}

const isLive = (s: MessageStatus) => s === 'active';

function checkComponents(kind: MessageKind, input: MessageInput): void {
  const problems: string[] = [];
  const lists: [keyof MessageInput, Component[] | undefined, boolean][] = [
    ['variants', input.variants, kind === 'campaign'],
    ['steps', input.steps, kind === 'canvas'],
    ['variations', input.variations, kind === 'canvas'],
  ];
  for (const [field, list, applies] of lists) {
    if (list === undefined) continue;
    if (!applies) problems.push(`${field} do not apply to a ${kind}`);
    const seen = new Set<string>();
    for (const c of list) {
      // Component ids are exact (`V1` and `v1` are two variants); tags, below, are not ids.
      if (seen.has(c.id)) problems.push(`${field}: id ${JSON.stringify(c.id)} appears twice`);
      seen.add(c.id);
    }
  }
  try {
    input.tags?.forEach(assertTag);
  } catch (err) {
    problems.push((err as Error).message);
  }
  if (input.tags && new Set(input.tags.map((t) => t.toLowerCase())).size !== input.tags.length) problems.push('tags: a tag appears twice');
  if (problems.length > 0) throw badRequest(problems.join('. '));
}

/** The message's own audiences: those of its kind linked to it with messageId. */
async function ownAudiences(db: Db, ref: MessageRef): Promise<Audience[]> {
  const ids = (await db('audiences').where({ type: ref.kind, message_id: ref.id }).pluck('id')) as string[];
  return [...(await loadAudiences(db, ids)).values()];
}

/**
 * Rule 9 for resuming messages: their own data must be available (else the actor would refuse), and
 * their audiences must not filter on expired data.
 */
export async function guardResume(db: Db, messages: readonly StoredMessage[], kind: MessageKind): Promise<void> {
  const avail = await availabilityOf(db, messages);
  const expired = messages.filter((m) => avail.get(refKey(m))?.available === false);
  if (expired.length > 0) {
    throw new ResumeRefusedError(RESUME_REFUSED_MESSAGE[kind]);
  }
  await guardOwnAudiences(db, messages, kind);
}

/** Rule 9 for the messages' own audiences: refused while one of them filters on expired data. */
export async function guardOwnAudiences(db: Db, messages: readonly StoredMessage[], kind: MessageKind): Promise<void> {
  const audiences = (await Promise.all(messages.map((m) => ownAudiences(db, m)))).flat();
  const uses = await expiredUses(
    db,
    audiences.map((a) => ({
      audienceId: a.id,
      targets: a.filters.map((f) => parseFilter(f)).flatMap((f) => (f.category === 'specific' ? [f.target] : [])),
      segmentIds: a.segmentIds,
    })),
  );
  refuseExpired(
    kind,
    messages.map((m) => m.name),
    uses,
  );
}

async function statusSignals(lifecycle: DataPlaneLifecycle, ref: MessageRef, from: MessageStatus | null, to: MessageStatus): Promise<void> {
  if (isLive(to) && from !== null && !isLive(from)) await lifecycle.resume(ref.kind, ref.id);
  if (!isLive(to) && (from === null || isLive(from))) await lifecycle.stop(ref.kind, ref.id);
}

/**
 * Writes the definition and makes the message's audiences follow its status; returns the reference
 * changes. With `create`, the message's row must not exist yet. `beforeCommit` runs inside the
 * transaction, after the rows are written: a failure there (Temporal unreachable) leaves the database
 * as it was.
 */
async function persist(
  db: Db,
  def: MessageDefinition,
  opts: { create?: boolean; beforeCommit?: () => Promise<void> } = {},
): Promise<MessageRef[]> {
  return db.transaction(async (trx) => {
    if (opts.create) await claimNewMessage(trx, def);
    await writeMessage(trx, def);
    const audiences = await ownAudiences(trx, def);
    const active = isLive(def.status);
    const changed = new Map<string, MessageRef>();
    for (const a of audiences) {
      if (a.active === active) continue;
      for (const r of [...activeTargets(a), ...activeTargets({ ...a, active })]) changed.set(refKey(r), r);
    }
    if (audiences.length > 0) {
      await trx('audiences')
        .where({ type: def.kind, message_id: def.id })
        .update({ active, updated_at: trx.raw('CURRENT_TIMESTAMP(3)') });
    }
    await opts.beforeCommit?.();
    return [...changed.values()];
  });
}

const alreadyExists = (ref: MessageRef) =>
  conflict('already_exists', `${ref.kind} ${JSON.stringify(ref.id)} already exists; change it with PUT /v1/messages/${ref.kind}/${ref.id}`);

/**
 * Takes the message's row for this transaction with a plain INSERT. Of two creations of one message
 * at the same time, the second waits here for the first to commit and then fails on the duplicate
 * key, before it has signalled the actor or written anything.
 */
async function claimNewMessage(trx: Db, def: MessageDefinition): Promise<void> {
  try {
    await trx('messages').insert({ kind: def.kind, id: def.id, name: def.name, status: def.status });
  } catch (err) {
    if (sqlErrno(err) === ER_DUP_ENTRY) throw alreadyExists(def);
    throw err;
  }
}

export async function createMessage(
  db: Db,
  lifecycle: DataPlaneLifecycle,
  ref: MessageRef,
  input: MessageInput & { name: string },
): Promise<SavedMessage> {
  checkComponents(ref.kind, input);
  if (await loadMessage(db, ref)) throw alreadyExists(ref);
  const def: MessageDefinition = {
    ...ref,
    name: input.name,
    tags: input.tags ?? [],
    status: input.status ?? 'active',
    variants: input.variants ?? [],
    steps: input.steps ?? [],
    variations: input.variations ?? [],
  };
  // The row is claimed first and the actor signalled while the claim is held: a second creation of
  // the same message waits for this one and then gets a 409, without touching the actor.
  const changed = await persist(db, def, {
    create: true,
    beforeCommit: async () => {
      // Launching: the actor exists from now on, with the name and tags its search attributes show.
      await lifecycle.updateDetails(ref.kind, ref.id, { name: def.name, tags: def.tags });
      await statusSignals(lifecycle, ref, 'active', def.status);
    },
  });
  return { message: (await loadMessage(db, ref)) as StoredMessage, references: await signalReferencesChanged(lifecycle, changed) };
}

export async function updateMessage(db: Db, lifecycle: DataPlaneLifecycle, ref: MessageRef, input: MessageInput): Promise<SavedMessage> {
  checkComponents(ref.kind, input);
  const current = await loadMessage(db, ref);
  if (!current) throw notFound(`no ${ref.kind} ${JSON.stringify(ref.id)}; create it with POST /v1/messages`);
  const def: MessageDefinition = {
    kind: current.kind,
    id: current.id,
    name: input.name ?? current.name,
    tags: input.tags ?? current.tags,
    status: input.status ?? current.status,
    variants: input.variants ?? current.variants,
    steps: input.steps ?? current.steps,
    variations: input.variations ?? current.variations,
  };
  if (isLive(def.status) && !isLive(current.status)) await guardResume(db, [current], ref.kind);
  const detailsChanged = def.name !== current.name || def.tags.join('\u0000') !== current.tags.join('\u0000');
  if (detailsChanged) await lifecycle.updateDetails(ref.kind, current.id, { name: def.name, tags: def.tags });
  await statusSignals(lifecycle, current, current.status, def.status);
  const changed = await persist(db, def);
  return { message: (await loadMessage(db, ref)) as StoredMessage, references: await signalReferencesChanged(lifecycle, changed) };
}

/** Resumes several stopped campaigns or Canvases at once: all or none (rule 9's plural refusals). */
export async function resumeMessages(
  db: Db,
  lifecycle: DataPlaneLifecycle,
  kind: MessageKind,
  ids: readonly string[],
): Promise<SavedMessage[]> {
  const refs = [...new Set(ids)].map((id) => ({ kind, id }));
  const found = await loadMessages(db, refs);
  const missing = refs.filter((r) => !found.has(refKey(r)));
  if (missing.length > 0) throw notFound(`no ${kind} ${missing.map((m) => JSON.stringify(m.id)).join(', ')}`);
  const messages = refs.map((r) => found.get(refKey(r)) as StoredMessage);
  const toResume = messages.filter((m) => !isLive(m.status));
  if (toResume.length > 0) await guardResume(db, toResume, kind);
  const out: SavedMessage[] = [];
  for (const m of messages) out.push(await updateMessage(db, lifecycle, m, { status: 'active' }));
  return out;
}
