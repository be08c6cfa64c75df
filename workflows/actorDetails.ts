/**
 * What an actor tells an operator in the Temporal Web UI: its current details (Markdown, kept up to
 * date by the loop through `setCurrentDetails`) and the one-line summaries of its timers and moves.
 *
 * Pure and deterministic (no clock, no I/O): the workflow calls it on every pass of its loop, and
 * test/unit/actorDetails.test.ts checks each state's text without Temporal.
 */
import { RESTORE_REQUESTER_PLACEHOLDER, messageLabel } from '../src/shared/actorText';
import type { ArchiveManifest, ReferencingAudience } from '../src/shared/types';
import { formatBytes } from '../src/shared/units';
import { isAvailable, type ActorState } from './lifecycleMachine';

/** The Markdown the Web UI shows under "Current details": one paragraph (or list) per fact. */
export function actorDetails(s: ActorState): string {
  const ref = `${s.kind}:${s.id}`;
  // State and why first: the Web UI shows the first lines of the details without scrolling.
  const title = `${messageLabel(s.kind, s.id)}${s.name ? ` · ${escape(s.name)}` : ''}`;
  const blocks: string[] = [
    `**${capitalised(s.state)}** · ${title} — interaction data ${isAvailable(s.state) ? 'available' : 'not available'}.`,
  ];
  blocks.push(...why(s));
  if (s.archive) blocks.push(`**Last archive:** ${archiveLine(s.archive, s.archivedAt ?? null)}`);
  if (s.lastRestore) {
    const by = s.lastRestore.requestedBy || 'no one named';
    blocks.push(
      `**Last restore:** requested by ${escape(by)} at ${instant(s.lastRestore.requestedAt)}, done at ${instant(s.lastRestore.completedAt)}: ${count(s.lastRestore.rowCount, 'row')}`,
    );
  }
  const pending = pendingRequests(s);
  if (pending) blocks.push(`**Pending:** ${pending}`);
  if (s.problem) {
    blocks.push(
      `**Problem:** \`${s.problem.type}\` in ${s.problem.activity} since ${instant(s.problem.since)}: ${escape(s.problem.error)}. ` +
        `Fix the cause, then \`interaction-data retry ${ref}\`.`,
    );
  }
  if (!isAvailable(s.state) && s.state !== 'restoring') {
    blocks.push(`**Restore:** \`interaction-data restore ${ref} --requested-by ${RESTORE_REQUESTER_PLACEHOLDER}\``);
  }
  if (s.tags.length > 0) blocks.push(`Tags: ${s.tags.map(escape).join(', ')}`);
  return blocks.join('\n\n');
}

/** The summary of the loop's timer: what happens when it fires. */
export function timerSummary(s: ActorState): string {
  const at = instant(s.dueAt);
  switch (s.state) {
    case 'stopped':
      return s.archivingHeld ? `archiving paused: looks again ${at}` : `expires ${at}`;
    case 'retained':
      return `references counted again ${at}`;
    case 'expired':
      return `sweeps late interactions ${at}`;
    default:
      return `next step ${at}`;
  }
}

/** The summary of a move: which generation, and whether it archives or restores it. */
export function moveSummary(what: 'archive' | 'sweep' | 'restore', generation: number): string {
  return what === 'sweep' ? `sweep late interactions into generation ${generation}` : `${what} generation ${generation}`;
}

function why(s: ActorState): string[] {
  switch (s.state) {
    case 'active':
      return ['Nothing is scheduled: the message has not stopped.'];
    case 'stopped':
      if (s.archivingHeld) {
        const h = s.archivingHeld;
        return [
          `Due and referenced by no active audience, but **archiving is paused** (by ${escape(h.pausedBy)} at ${instant(h.pausedAt)}` +
            `${h.reason ? `: ${escape(h.reason)}` : ''}). The data stays available; it moves to long-term storage once ` +
            `\`interaction-data archiving resume\` is run, or is looked at again at ${instant(s.dueAt)}.`,
        ];
      }
      return [
        `Stopped at ${instant(s.stoppedAt)}. Expires at ${instant(s.dueAt)}: its references are counted then, and with none it moves to long-term storage.`,
      ];
    case 'retained':
      return [
        `Kept past its expiry by ${count(s.activeReferences, 'active audience')} filtering on it (counted at ${instant(s.lastCheckedAt)}). ` +
          `Counted again at ${instant(s.dueAt)}; with none left it moves to long-term storage then.`,
        audienceList(s.referencingAudiences ?? [], s.activeReferences),
      ];
    case 'archiving':
      return [`Moving to long-term storage as generation ${s.generation}.`];
    case 'expired':
      return [
        s.asleep
          ? 'In long-term storage. Asleep: late interactions wake it to sweep them in.'
          : `In long-term storage. Late interactions are swept in at ${instant(s.dueAt)}.`,
      ];
    case 'restoring':
      return [`Being restored from generation ${s.generation}.`];
  }
}

function audienceList(audiences: ReferencingAudience[], total: number): string {
  const lines = audiences.map((a) => `- ${a.type.replace(/_/g, ' ')} **${escape(a.name ?? '(unnamed)')}** (\`${escape(a.id)}\`)`);
  if (total > audiences.length) lines.push(`- and ${count(total - audiences.length, 'more')}`);
  return lines.join('\n');
}

function archiveLine(a: ArchiveManifest, at: string | null): string {
  const where = a.store ? `, store ${a.store}` : '';
  const when = at ? `, done at ${instant(at)}` : '';
  return `generation ${a.generation}: ${count(a.rowCount, 'row')} in ${count(a.chunkCount, 'chunk')}, ${formatBytes(a.compressedBytes)}${where}${when}`;
}

function pendingRequests(s: ActorState): string {
  const parts: string[] = [];
  if (s.pendingRestores.length > 0) {
    const who = s.pendingRestores.map((r) => r.requestedBy || r.requestId).map(escape);
    parts.push(`${count(s.pendingRestores.length, 'restore request')} (${who.join(', ')})`);
  }
  const erasures = s.inbox.filter((e) => e.type === 'erase').length;
  if (erasures > 0) parts.push(count(erasures, 'user erasure'));
  return parts.join('; ');
}

function count(n: number, noun: string): string {
  return `${n.toLocaleString('en-US')} ${n === 1 || noun === 'more' ? noun : `${noun}s`}`;
}

/** An instant as operators read it: `2027-03-06 14:00:05 UTC`. */
function instant(iso: string | null | undefined): string {
  return iso ? `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC` : '(not known)';
}

function capitalised(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1);
}

/** Keeps names from turning into Markdown: a campaign called `*x*` is shown as written. */
function escape(text: string): string {
  return text.replace(/([\\`*_[\]<>#|])/g, '\\$1');
}
