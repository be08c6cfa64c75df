/**
 * The one summary e-mail of a bulk restore. Same delivery contract as the per-message restore e-mail
 * (src/email/restoreNotifier.ts): recorded in `email_outbox` under an idempotency key first, then sent
 * through Resend with that key when RESEND_API_KEY is set, so a retried activity never sends twice.
 */
import { quoted, safeInline } from '../email/safeText';
import { Resend } from 'resend';
import type { Db } from '../db/knex';
import type { NotifierOptions } from '../email/restoreNotifier';
import type { Logger } from '../logger';
import type { ListedItem } from './store';
import { describeSelection, type BulkSelectionSummary } from './types';

export interface OutgoingEmail {
  idempotencyKey: string;
  to: string;
  subject: string;
  text: string;
}

export class SummaryMailer {
  private readonly resend: Resend | null;

  constructor(
    private readonly db: Db,
    private readonly opts: NotifierOptions,
    private readonly log: Logger,
  ) {
    this.resend = opts.apiKey ? new Resend(opts.apiKey, opts.baseUrl ? { baseUrl: opts.baseUrl } : undefined) : null;
  }

  /** Resolves with when the e-mail was (or had already been) handed over. */
  async send(email: OutgoingEmail): Promise<string> {
    const key = email.idempotencyKey.slice(0, 191);
    await this.db('email_outbox')
      .insert({
        idempotency_key: key,
        to_address: email.to,
        subject: email.subject.slice(0, 255),
        body: email.text,
        provider: this.resend ? 'resend' : 'outbox',
      })
      .onConflict('idempotency_key')
      .ignore();
    const row = await this.db('email_outbox').where({ idempotency_key: key }).first<{ sent_at: string | null }>();
    if (row?.sent_at) return sqlInstant(row.sent_at);

    if (this.resend) {
      const { data, error } = await this.resend.emails.send(
        { from: this.opts.from, to: [email.to], subject: email.subject, text: email.text },
        { idempotencyKey: key },
      );
      if (error) throw new Error(`Resend refused the bulk restore summary to ${email.to}: ${error.name}: ${error.message}`);
      await this.db('email_outbox')
        .where({ idempotency_key: key })
        .update({ sent_at: this.db.raw('CURRENT_TIMESTAMP(3)'), provider_message_id: data?.id ?? null });
      this.log.info({ to: email.to, subject: email.subject, resendId: data?.id }, 'bulk restore summary sent');
    } else {
      await this.db('email_outbox')
        .where({ idempotency_key: key })
        .update({ sent_at: this.db.raw('CURRENT_TIMESTAMP(3)') });
      this.log.info(
        { to: email.to, subject: email.subject, idempotencyKey: key },
        'bulk restore summary written to the outbox (RESEND_API_KEY unset)',
      );
    }
    const sent = await this.db('email_outbox').where({ idempotency_key: key }).first<{ sent_at: string | null }>();
    return sent?.sent_at ? sqlInstant(sent.sent_at) : new Date().toISOString();
  }
}

function sqlInstant(value: string): string {
  return new Date(`${value.replace(' ', 'T')}Z`).toISOString();
}

export function summaryEmailKey(executionKey: string, to: string): string {
  return `interaction-data-bulk-restore/${executionKey}/${to}`;
}

export interface SummaryContent {
  requestId: string;
  selection: BulkSelectionSummary;
  total: number;
  restored: number;
  alreadyAvailable: number;
  failed: number;
  rowsRestored: number;
  startedAt: string;
  finishedAt: string;
  restoredItems: ListedItem[];
  failedItems: ListedItem[];
  availableItems: ListedItem[];
}

/** How many messages of each outcome the e-mail names; counts are always complete. */
export const SUMMARY_LIST_LIMITS = { restored: 500, failed: 500, alreadyAvailable: 200 } as const;

const n = (value: number) => value.toLocaleString('en-US');
const plural = (count: number, one: string, many = `${one}s`) => `${n(count)} ${count === 1 ? one : many}`;

function label(item: ListedItem): string {
  const ref = `${item.kind} ${safeInline(item.id)}`;
  return item.name ? `${ref} ${quoted(item.name)}` : ref;
}

function section(title: string, items: readonly ListedItem[], total: number, line: (i: ListedItem) => string): string[] {
  if (total === 0) return [];
  const lines = [``, `${title} (${n(total)}):`, ...items.map((i) => `  - ${line(i)}`)];
  if (total > items.length) lines.push(`  ... and ${n(total - items.length)} more`);
  return lines;
}

export function renderSummaryEmail(c: SummaryContent): { subject: string; text: string } {
  // The tag and request id are the caller's words: escaped like every other caller text in the e-mail.
  const what = describeSelection(c.selection.by === 'tag' ? { ...c.selection, tag: safeInline(c.selection.tag, 60) } : c.selection);
  const counts = [
    `${n(c.restored)} restored`,
    ...(c.failed > 0 ? [`${n(c.failed)} failed`] : []),
    ...(c.alreadyAvailable > 0 ? [`${n(c.alreadyAvailable)} already available`] : []),
  ];
  const subject =
    c.total === 0 ? `Bulk restore complete: nothing matched (${what})` : `Bulk restore complete: ${counts.join(', ')} (${what})`;
  const lines = [
    `Your restore of ${what} (request ${safeInline(c.requestId)}) is complete.`,
    ``,
    `  Messages in the request:  ${n(c.total)}`,
    `  Restored:                 ${plural(c.restored, 'message')}, ${plural(c.rowsRestored, 'interaction record')}`,
    `  Already available:        ${plural(c.alreadyAvailable, 'message')} (left untouched)`,
    `  Failed:                   ${plural(c.failed, 'message')}`,
    ...(c.total === 0 ? ['', 'No message matched the request, so nothing was restored.'] : []),
    ...section('Failed', c.failedItems, c.failed, (i) => `${label(i)}: ${i.reason ? safeInline(i.reason, 300) : 'failed'}`),
    ...section('Restored', c.restoredItems, c.restored, (i) => `${label(i)}: ${plural(i.rowCount, 'record')}`),
    ...section(
      'Already available, nothing to do',
      c.availableItems,
      c.alreadyAvailable,
      (i) => `${label(i)}${i.reason ? `: ${safeInline(i.reason, 300)}` : ''}`,
    ),
    ``,
    `Restored data is available again to retargeting filters, user profiles and exports. A message that stays ` +
      `stopped moves back to long-term storage after another period of inactivity.`,
    ``,
    `Started ${c.startedAt}, finished ${c.finishedAt}.`,
  ];
  return { subject, text: `${lines.join('\n')}\n` };
}
