/**
 * The words an actor is shown with in the Temporal Web UI, shared by the clients that start it (its
 * static summary and details) and the workflow (its current details, workflows/actorDetails.ts).
 */
import type { MessageKind, MessageRef } from './types';

/** Stands for the requester's address in the restore command an actor's details show. */
export const RESTORE_REQUESTER_PLACEHOLDER = 'you@example.com';

/** `Campaign \`6f1c2b\`` or `Canvas \`welcome-flow\`` (Markdown). */
export function messageLabel(kind: MessageKind, id: string): string {
  return `${kind === 'campaign' ? 'Campaign' : 'Canvas'} \`${id.replace(/`/g, "'")}\``;
}

/**
 * The static summary and details a client starts an actor with. They name the message only: its name,
 * tags and state change, and are in the current details, which the actor keeps up to date.
 */
export function actorStartMetadata(ref: MessageRef): { staticSummary: string; staticDetails: string } {
  const what = ref.kind === 'campaign' ? 'campaign' : 'Canvas';
  return {
    staticSummary: `Interaction data of ${what} ${ref.id}`,
    staticDetails:
      `Decides whether the messaging interaction data of ${messageLabel(ref.kind, ref.id)} is available, ` +
      'moves it to long-term storage once it expires and no active audience filters on it, and restores it on request. ' +
      'Its state, why, and what happens next are under Current details.',
  };
}
