/** Argument checks shared by the commands; each failure becomes a UsageError naming the argument. */
import { LIFECYCLE_STATES, MESSAGE_KINDS, type LifecycleState, type MessageKind, type MessageRef } from '../shared/types';
import { assertEmail, assertInstant, assertRequestId, assertTag, InvalidInputError } from '../shared/validation';
import { InvalidMessageRefError, isMessageKind, parseMessageRef } from '../shared/workflowId';
import { UsageError } from './context';

export function refLabel(ref: MessageRef): string {
  return `${ref.kind}:${ref.id}`;
}

/**
 * Parses every `<kind>:<id>` and reports all the bad ones at once, so a long list is fixed in one go.
 * Duplicates are dropped: signalling a message twice in one command would only repeat the work.
 */
export function parseRefs(texts: readonly string[]): MessageRef[] {
  if (texts.length === 0) throw new UsageError('expected at least one <kind>:<id>, e.g. campaign:6f1c2b or canvas:welcome-flow');
  const problems: string[] = [];
  const refs: MessageRef[] = [];
  const seen = new Set<string>();
  for (const text of texts) {
    try {
      const ref = parseMessageRef(text);
      if (seen.has(refLabel(ref))) continue;
      seen.add(refLabel(ref));
      refs.push(ref);
    } catch (err) {
      if (!(err instanceof InvalidMessageRefError)) throw err;
      problems.push(err.message);
    }
  }
  if (problems.length > 0) {
    throw new UsageError(
      problems.length === 1 ? problems[0] : `${problems.length} invalid message references:\n  ${problems.join('\n  ')}`,
    );
  }
  return refs;
}

/** Runs one of the shared assert* checks and turns its error into a usage error about the option. */
function option<T>(flag: string, check: () => T): T {
  try {
    return check();
  } catch (err) {
    if (err instanceof InvalidInputError) throw new UsageError(`${flag}: ${err.message}`);
    throw err;
  }
}

export function parseInstantOption(flag: string, value: string): string {
  return option(flag, () => assertInstant(value, flag));
}

export function parseEmailOption(flag: string, value: string | undefined): string {
  if (value === undefined) throw new UsageError(`${flag} <email> is required: who gets the "restore complete" e-mail`);
  return option(flag, () => assertEmail(value, flag));
}

export function parseRequestIdOption(flag: string, value: string): string {
  return option(flag, () => assertRequestId(value));
}

export function parseTagOption(flag: string, value: string): string {
  return option(flag, () => assertTag(value));
}

export function parseStateOption(flag: string, value: string): LifecycleState {
  if (!(LIFECYCLE_STATES as readonly string[]).includes(value)) {
    throw new UsageError(`${flag} must be one of ${LIFECYCLE_STATES.join(', ')}; got ${JSON.stringify(value)}`);
  }
  return value as LifecycleState;
}

export function parseKindOption(flag: string, value: string): MessageKind {
  if (!isMessageKind(value)) throw new UsageError(`${flag} must be one of ${MESSAGE_KINDS.join(', ')}; got ${JSON.stringify(value)}`);
  return value;
}

export function parsePositiveIntOption(flag: string, value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) {
    throw new UsageError(`${flag} must be a positive whole number; got ${JSON.stringify(value)}`);
  }
  return n;
}
