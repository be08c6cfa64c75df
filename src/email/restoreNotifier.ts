/**
 * "Restore complete" e-mails. Every e-mail is first recorded in `email_outbox` under its idempotency
 * key (one row per restore and recipient, whatever the retries); with RESEND_API_KEY set it is then
 * sent through Resend with the same key, so a retried activity never sends twice.
 */
import { Resend } from 'resend';
import type { Db } from '../db/knex';
import type { Logger } from '../logger';
import type { RestoreEmail } from '../../activities/types';
import { quoted, safeInline } from './safeText';

export interface NotifierOptions {
  apiKey: string | null;
  baseUrl: string | null;
  from: string;
}

export function restoreEmailKey(email: RestoreEmail): string {
  // A request told its restore cannot proceed is told again when it is served: a key of its own.
  const what = email.failure ? 'interaction-data-restore-failed' : 'interaction-data-restore';
  return `${what}/${email.kind}/${email.id}/${email.restoreId}/${email.to}`.slice(0, 191);
}

export function renderRestoreEmail(email: RestoreEmail): { subject: string; text: string } {
  // Names and ids are the callers' words: escaped, so no one writes our e-mails for us.
  const ref = `${email.kind} ${safeInline(email.id)}`;
  const label = email.name ? `${quoted(email.name)} (${ref})` : ref;
  if (email.failure) {
    return {
      subject: `Interaction data restore cannot proceed: ${label}`,
      text:
        `The restore of the interaction data of ${label} that you requested cannot proceed without an operator ` +
        `(since ${email.completedAt}): ${safeInline(email.failure, 300)}\n\n` +
        `Your request is kept: once the cause is fixed and the restore retried, it is served and you get another e-mail.\n`,
    };
  }
  return {
    subject: `Interaction data restored: ${label}`,
    text:
      `The interaction data of ${label} has been restored and is available again ` +
      `(${email.rowCount} interaction records, completed ${email.completedAt}).\n\n` +
      `It is available to retargeting filters, user profiles and exports. If the ${email.kind} stays stopped, ` +
      `the data moves back to long-term storage after another period of inactivity.\n`,
  };
}

export class RestoreNotifier {
  private readonly resend: Resend | null;

  constructor(
    private readonly db: Db,
    private readonly opts: NotifierOptions,
    private readonly log: Logger,
  ) {
    this.resend = opts.apiKey ? new Resend(opts.apiKey, opts.baseUrl ? { baseUrl: opts.baseUrl } : undefined) : null;
  }

  async send(email: RestoreEmail): Promise<void> {
    const key = restoreEmailKey(email);
    const { subject, text } = renderRestoreEmail(email);
    await this.db('email_outbox')
      .insert({ idempotency_key: key, to_address: email.to, subject, body: text, provider: this.resend ? 'resend' : 'outbox' })
      .onConflict('idempotency_key')
      .ignore();
    const row = await this.db('email_outbox').where({ idempotency_key: key }).first<{ sent_at: string | null }>();
    if (row?.sent_at) return;

    if (!this.resend) {
      this.log.info({ to: email.to, subject, idempotencyKey: key }, 'restore e-mail written to the outbox (RESEND_API_KEY unset)');
      await this.db('email_outbox')
        .where({ idempotency_key: key })
        .update({ sent_at: this.db.raw('CURRENT_TIMESTAMP(3)') });
      return;
    }
    const { data, error } = await this.resend.emails.send({ from: this.opts.from, to: [email.to], subject, text }, { idempotencyKey: key });
    if (error) throw new Error(`Resend refused the restore e-mail to ${email.to}: ${error.name}: ${error.message}`);
    await this.db('email_outbox')
      .where({ idempotency_key: key })
      .update({ sent_at: this.db.raw('CURRENT_TIMESTAMP(3)'), provider_message_id: data?.id ?? null });
    this.log.info({ to: email.to, subject, resendId: data?.id }, 'restore e-mail sent');
  }
}
