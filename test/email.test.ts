/** The restore e-mail goes through Resend's SDK to a local stand-in: once per restore, retried on failure. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MessageRef } from '../src/shared/types';
import { createStack, seedInteractions, sentEmailsTo, waitFor, waitForState, waitUntilSettled, type TestStack } from './support/stack';
import { startFakeResend, type FakeResend } from './support/fakeResend';

describe('restore e-mail through Resend', () => {
  let resend: FakeResend;
  let stack: TestStack;

  before(async () => {
    resend = await startFakeResend();
    stack = await createStack({
      ttl: '2 seconds',
      cleanupInterval: '1 hour',
      env: { RESEND_API_KEY: 're_test_key', RESEND_BASE_URL: resend.baseUrl, EMAIL_FROM: 'Data <data@example.com>' },
    });
    await stack.startWorker();
  });
  after(async () => {
    await stack?.close();
    await resend?.close();
  });

  it('sends exactly one e-mail per restore, even when Resend fails first', async () => {
    const ref: MessageRef = { kind: 'canvas', id: 'welcome-flow' };
    await stack.db('messages').insert({ kind: ref.kind, id: ref.id, name: 'Welcome flow' });
    await seedInteractions(stack.db, ref, 120);
    await stack.lifecycle.stop(ref.kind, ref.id);
    await waitForState(stack, ref, 'expired', 20_000);

    resend.failNext(2);
    const { requestId } = await stack.lifecycle.restore(ref.kind, ref.id, { requestedBy: 'owner@example.com' });
    const restored = await waitForState(stack, ref, 'stopped', 20_000);
    assert.equal(restored.available, true, 'a failing e-mail does not hold back or undo the restore');
    await waitFor('the e-mail to arrive', () => Promise.resolve(resend.received.length > 0), 30_000);
    // The outbox row records Resend's answer after the response is back: wait for that, not only the request.
    await waitFor('the outbox to record the send', async () => (await sentEmailsTo(stack.db, 'owner@example.com')).length === 1, 30_000);
    await waitUntilSettled(stack, ref);
    assert.equal(resend.received.length, 1);
    const [email] = resend.received;
    assert.deepEqual(email.body.to, ['owner@example.com']);
    assert.equal(email.body.from, 'Data <data@example.com>');
    assert.equal(email.authorization, 'Bearer re_test_key');
    assert.match(email.body.subject, /Welcome flow/);
    assert.match(email.body.text ?? '', /120 interaction records/);
    assert.ok(email.idempotencyKey?.includes(requestId), 'idempotency key is per restore');
    const outbox = await stack
      .db('email_outbox')
      .where({ to_address: 'owner@example.com' })
      .select<{ provider: string | null; provider_message_id: string | null }[]>('provider', 'provider_message_id');
    assert.equal(outbox.length, 1);
    assert.equal(outbox[0].provider, 'resend');
    assert.equal(outbox[0].provider_message_id, 'email_1');
  });
});
