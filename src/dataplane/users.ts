/** User profiles and the users export, built from summaries (rule 7) and the received lists (rule 6). */
import type { Db } from '../db/knex';
import { receivedByUser, isMultivariate, type MessageFacts, type UserReceived } from './received';
import { isoTime } from './sql';
import { USER_TIME_COLUMNS } from './ingest/summaries';

interface UserRow {
  id: string;
  first_seen_at: string;
  [column: string]: string | null;
}

export type UserSummary = Record<string, string | null> & {
  lastReceivedAt: string | null;
  lastReceivedEmailAt: string | null;
  lastReceivedPushAt: string | null;
  lastReceivedSmsAt: string | null;
  lastReceivedWebhookAt: string | null;
  lastReceivedWhatsappAt: string | null;
  lastEngagedAt: string | null;
  lastControlGroupAt: string | null;
  hardBouncedAt: string | null;
  markedSpamAt: string | null;
};

export interface CampaignReceivedItem {
  id: string;
  name: string;
  lastReceived: string | null;
  variantId: string | null;
  variantName: string | null;
  inControl: boolean;
  opened: boolean;
  clicked: boolean;
  converted: boolean;
}

export interface CanvasReceivedItem {
  id: string;
  name: string;
  lastReceivedMessage: string | null;
  lastEntered: string | null;
  variationName: string | null;
  inControl: boolean;
  lastExited: string | null;
  steps: { id: string; name: string; lastReceived: string }[];
}

export interface UserProfile {
  id: string;
  firstSeenAt: string;
  summary: UserSummary;
  campaignsReceived: CampaignReceivedItem[];
  canvasMessagesReceived: CanvasReceivedItem[];
}

const camel = (col: string) => col.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

async function loadUsers(db: Db, ids: readonly string[]): Promise<Map<string, UserRow>> {
  const rows = (await db('users')
    .select('id', 'first_seen_at', ...USER_TIME_COLUMNS)
    .whereIn('id', ids as string[])) as UserRow[];
  return new Map(rows.map((r) => [r.id, r]));
}

export async function userProfile(db: Db, userId: string): Promise<UserProfile | null> {
  const user = (await loadUsers(db, [userId])).get(userId);
  if (!user) return null;
  const lists = (await receivedByUser(db, [user.id])).get(user.id) ?? { campaigns: [], canvases: [] };
  const summary = Object.fromEntries(USER_TIME_COLUMNS.map((c) => [camel(c), isoTime(user[c])])) as unknown as UserSummary;
  return {
    id: user.id,
    firstSeenAt: isoTime(user.first_seen_at) as string,
    summary,
    campaignsReceived: lists.campaigns.map((f) => ({
      id: f.message.id,
      name: f.message.name,
      lastReceived: f.lastReceived,
      variantId: f.variant?.id ?? null,
      variantName: f.variant?.name ?? null,
      inControl: f.inControl,
      opened: f.openedEmail || f.openedPush,
      clicked: f.clickedEmail || f.clickedInAppMessage,
      converted: f.converted,
    })),
    canvasMessagesReceived: lists.canvases.map((f) => ({
      id: f.message.id,
      name: f.message.name,
      lastReceivedMessage: f.lastReceived,
      lastEntered: f.lastEntered,
      variationName: f.variation?.name ?? null,
      inControl: f.inControl,
      lastExited: f.lastExited,
      steps: f.steps.map((s) => ({ id: s.step.id, name: s.step.name, lastReceived: s.lastReceived })),
    })),
  };
}

export const EXPORT_FIELDS = ['external_id', 'first_seen', 'campaigns_received', 'canvases_received'] as const;
export type ExportField = (typeof EXPORT_FIELDS)[number];
export const EXPORT_MAX_IDS = 50;

export interface ExportedCampaign {
  name: string;
  last_received: string | null;
  engaged: { opened_email: boolean; opened_push: boolean; clicked_email: boolean; clicked_triggered_in_app_message: boolean };
  converted: boolean;
  api_campaign_id: string;
  variation_name?: string | null;
  variation_api_id?: string | null;
  in_control?: boolean;
}

export interface ExportedCanvas {
  name: string;
  api_canvas_id: string;
  last_received_message: string | null;
  last_entered: string | null;
  variation_name: string | null;
  in_control: boolean;
  last_exited: string | null;
  steps_received: { name: string; api_canvas_step_id: string; last_received: string }[];
}

export interface ExportedUser {
  external_id?: string;
  first_seen?: string;
  campaigns_received?: ExportedCampaign[];
  canvases_received?: ExportedCanvas[];
}

function exportCampaign(f: MessageFacts): ExportedCampaign {
  const out: ExportedCampaign = {
    name: f.message.name,
    last_received: f.lastReceived,
    engaged: {
      opened_email: f.openedEmail,
      opened_push: f.openedPush,
      clicked_email: f.clickedEmail,
      clicked_triggered_in_app_message: f.clickedInAppMessage,
    },
    converted: f.converted,
    api_campaign_id: f.message.id,
  };
  if (isMultivariate(f.message)) {
    out.variation_name = f.variant?.name ?? null;
    out.variation_api_id = f.variant?.id ?? null;
    out.in_control = f.inControl;
  }
  return out;
}

function exportCanvas(f: MessageFacts): ExportedCanvas {
  return {
    name: f.message.name,
    api_canvas_id: f.message.id,
    last_received_message: f.lastReceived,
    last_entered: f.lastEntered,
    variation_name: f.variation?.name ?? null,
    in_control: f.inControl,
    last_exited: f.lastExited,
    steps_received: f.steps.map((s) => ({ name: s.step.name, api_canvas_step_id: s.step.id, last_received: s.lastReceived })),
  };
}

/** The users export: known users in request order, unknown ids listed apart. */
export async function exportUsers(
  db: Db,
  externalIds: readonly string[],
  fields: readonly ExportField[] = EXPORT_FIELDS,
): Promise<{ users: ExportedUser[]; invalid_user_ids: string[] }> {
  const users = await loadUsers(db, externalIds);
  const wantLists = fields.includes('campaigns_received') || fields.includes('canvases_received');
  const lists = wantLists
    ? await receivedByUser(
        db,
        [...users.values()].map((u) => u.id),
      )
    : new Map<string, UserReceived>();
  const seen = new Set<string>();
  const out: ExportedUser[] = [];
  const invalid: string[] = [];
  for (const id of externalIds) {
    // External ids are exact: `Bob` and `bob` are two users.
    if (seen.has(id)) continue;
    seen.add(id);
    const user = users.get(id);
    if (!user) {
      invalid.push(id);
      continue;
    }
    const l = lists.get(id) ?? { campaigns: [], canvases: [] };
    const row: ExportedUser = {};
    if (fields.includes('external_id')) row.external_id = user.id;
    if (fields.includes('first_seen')) row.first_seen = isoTime(user.first_seen_at) as string;
    if (fields.includes('campaigns_received')) row.campaigns_received = l.campaigns.map(exportCampaign);
    if (fields.includes('canvases_received')) row.canvases_received = l.canvases.map(exportCanvas);
    out.push(row);
  }
  return { users: out, invalid_user_ids: invalid };
}
