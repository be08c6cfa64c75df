/** Vocabulary of the data plane: event types, channels and message components. Pure: no I/O. */
import type { MessageKind, MessageRef } from '../shared/types';

export const EVENT_TYPES = [
  'received',
  'opened',
  'clicked',
  'converted',
  'control_group',
  'entered_variation',
  'exited',
  'hard_bounced',
  'marked_spam',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export const CHANNELS = ['email', 'push', 'sms', 'webhook', 'whatsapp', 'in_app_message', 'content_card'] as const;
export type Channel = (typeof CHANNELS)[number];

/** Channels with a "Last Received <channel>" summary filter. */
export const SUMMARY_CHANNELS = ['email', 'push', 'sms', 'webhook', 'whatsapp'] as const;
export type SummaryChannel = (typeof SUMMARY_CHANNELS)[number];

export const MESSAGE_STATUSES = ['active', 'stopped', 'archived'] as const;
export type MessageStatus = (typeof MESSAGE_STATUSES)[number];

export type ComponentType = 'variant' | 'step' | 'variation';

export interface Component {
  id: string;
  name: string;
}

/** A campaign or Canvas as the data plane knows it. */
export interface MessageDefinition extends MessageRef {
  name: string;
  tags: string[];
  status: MessageStatus;
  /** Campaigns only. */
  variants: Component[];
  /** Canvases only. */
  steps: Component[];
  variations: Component[];
}

export const COMPONENTS_OF: Record<MessageKind, readonly ComponentType[]> = {
  campaign: ['variant'],
  canvas: ['step', 'variation'],
};

/**
 * Map key of a message. Ids are exact, byte for byte, in the database (utf8mb4_bin, migration 007)
 * as here: `CS1` and `cs1` are two messages, as they are two workflows.
 */
export function refKey(ref: MessageRef): string {
  return `${ref.kind}:${ref.id}`;
}

/** Per-batch limit of POST /v1/interactions; larger batches are refused with 413. */
export const MAX_BATCH_EVENTS = 1000;
/** Generous for 1000 events of ~300 bytes; a request larger than this is refused before parsing. */
export const MAX_BATCH_BYTES = 2 * 1024 * 1024;
