import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderRestoreEmail } from '../../src/email/restoreNotifier';
import { renderSummaryEmail } from '../../src/bulk/summaryEmail';
import { quoted, safeInline } from '../../src/email/safeText';

describe('caller text in e-mails', () => {
  it('stays on one line, loses control and invisible characters, and is shortened', () => {
    assert.equal(safeInline('Spring\r\nBcc: victim@example.com\u0000\u200b sale'), 'Spring Bcc: victim[at]example[.]com sale');
    assert.equal(safeInline('x'.repeat(200), 10), `${'x'.repeat(9)}…`);
  });

  it('defangs links and domains, keeps ordinary words', () => {
    assert.equal(safeInline('Reset your password at https://evil.example/login'), 'Reset your password at https[:]//evil[.]example/login');
    assert.equal(safeInline('visit www.bank.co.uk now'), 'visit www[.]bank[.]co[.]uk now');
    assert.equal(safeInline('Summer sale 2026 – 20% off'), 'Summer sale 2026 – 20% off');
    assert.equal(quoted('say "hi"'), `"say 'hi'"`);
  });

  it('restore and bulk e-mails carry names, tags and ids only escaped', () => {
    const mail = renderRestoreEmail({
      kind: 'campaign',
      id: 'promo.example.com',
      name: 'Win!\nClick https://evil.example',
      to: 'ops@example.com',
      restoreId: 'r-1',
      rowCount: 3,
      completedAt: '2026-12-06T10:00:00Z',
    });
    assert.equal(mail.subject, `Interaction data restored: "Win! Click https[:]//evil[.]example" (campaign promo[.]example[.]com)`);
    assert.ok(!mail.text.includes('https://') && !mail.text.includes('evil.example'));
    const summary = renderSummaryEmail({
      requestId: 'evil.example',
      selection: { by: 'tag', tag: 'go to evil.example/login', kinds: ['campaign'] },
      total: 0,
      restored: 0,
      failed: 0,
      alreadyAvailable: 0,
      rowsRestored: 0,
      failedItems: [],
      restoredItems: [],
      availableItems: [],
      startedAt: '2026-12-06T10:00:00Z',
      finishedAt: '2026-12-06T10:01:00Z',
    } as unknown as Parameters<typeof renderSummaryEmail>[0]);
    assert.ok(!summary.subject.includes('evil.example') && !summary.text.includes('evil.example'), summary.subject + summary.text);
    assert.match(summary.subject, /tagged "go to evil\[\.\]example\/login"/);
  });
});
