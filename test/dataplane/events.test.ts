/** Unit tests (no I/O): event checks agree with the documented schema; batch aggregates; CSV cells. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox';
import { InteractionEvent } from '../../src/api/dataPlaneSchemas';
import { checkEvent } from '../../src/dataplane/ingest/events';
import { batchDeltas } from '../../src/dataplane/ingest/summaries';
import { parseFilter, InvalidFilterError } from '../../src/dataplane/filters/definitions';
import { stringify } from 'csv-stringify/sync';
import { CSV_FORMAT } from '../../src/dataplane/userDataCsv';

const schemaAccepts = (() => {
  const validate = TypeBoxValidatorCompiler({
    schema: InteractionEvent,
    httpPart: 'body',
    method: 'POST',
    url: '/v1/interactions',
  });
  return (value: unknown) => !('error' in (validate(value) as object) && (validate(value) as { error?: unknown }).error);
})();

const base = {
  eventId: 'e-1',
  type: 'received',
  messageKind: 'campaign',
  messageId: 'c1',
  userId: 'user 1',
  occurredAt: '2026-01-01T00:00:00Z',
  channel: 'email',
};

describe('interaction event checks', () => {
  it('accept what the OpenAPI schema documents, and refuse what it refuses', () => {
    const samples: Record<string, unknown>[] = [
      base,
      { ...base, variantId: 'a' },
      { ...base, type: 'clicked', alias: 'cta "1" ✓' },
      { ...base, messageKind: 'canvas', stepId: 's1', variationId: 'v1' },
      { ...base, type: 'entered_variation', messageKind: 'canvas', variationId: 'v1', channel: undefined },
      { ...base, occurredAt: '2026-01-01T00:00:00.123+02:00' },
      { ...base, eventId: '' },
      { ...base, eventId: 'x'.repeat(65) },
      { ...base, userId: ' padded' },
      { ...base, userId: 'tab\there' },
      { ...base, userId: 'u'.repeat(65) },
      { ...base, occurredAt: '2026-01-01' },
      { ...base, channel: 'fax' },
      { ...base, type: 'bought' },
      { ...base, messageKind: 'email' },
      { ...base, extra: 1 },
      { ...base, alias: '' },
      { ...base, variantId: 'bad id' },
    ].map((s) => JSON.parse(JSON.stringify(s)) as Record<string, unknown>);
    for (const s of samples) {
      const ours = checkEvent(s, Date.parse('2026-01-02T00:00:00Z'));
      if (ours.problems.length === 0) assert.ok(schemaAccepts(s), `schema refuses what ingestion accepts: ${JSON.stringify(s)}`);
      // Field-level rules are the schema's too; per-type rules (which fields an event type needs) are ingestion's alone.
      if (!schemaAccepts(s)) assert.ok(ours.problems.length > 0, `ingestion accepts what the schema refuses: ${JSON.stringify(s)}`);
    }
  });

  it('names every problem of an event', () => {
    const { problems } = checkEvent({
      eventId: 'bad id',
      type: 'opened',
      messageKind: 'canvas',
      messageId: 'k',
      userId: 'u',
      occurredAt: '2999-01-01T00:00:00Z',
      variantId: 'v',
    });
    assert.deepEqual(problems, [
      "eventId must be 1-64 letters, digits or '.', '_', ':', '+', '/', '=', '-', starting with a letter or digit; got \"bad id\"",
      'occurredAt is more than a day in the future; got "2999-01-01T00:00:00Z"',
      'channel is required for a opened event (one of email, push, sms, webhook, whatsapp, in_app_message, content_card)',
      'variantId does not apply to a opened event of a canvas',
      'stepId is required for a opened event of a canvas',
    ]);
  });
});

describe('batch aggregates', () => {
  it('fold a batch into one row per user, receipt, alias and analytics cell; ids are exact, aliases are not', () => {
    const ev = (o: Record<string, string>) => ({ ...base, ...o }) as unknown as Parameters<typeof batchDeltas>[0][number];
    const d = batchDeltas([
      ev({ eventId: '1', userId: 'ann', occurredAt: '2026-01-02T00:00:00.000Z' }),
      ev({ eventId: '2', userId: 'ann', occurredAt: '2026-01-01T00:00:00.000Z', channel: 'push' }),
      ev({ eventId: '5', userId: 'Ann', occurredAt: '2026-01-05T00:00:00.000Z' }),
      ev({ eventId: '3', userId: 'bob', type: 'clicked', alias: 'cta', occurredAt: '2026-01-03T00:00:00.000Z' }),
      ev({ eventId: '4', userId: 'bob', type: 'clicked', alias: 'CTA', occurredAt: '2026-01-04T00:00:00.000Z' }),
    ]);
    assert.deepEqual(
      d.users.map((u) => u.id),
      ['Ann', 'ann', 'bob'],
      'Ann and ann are two users',
    );
    assert.equal(d.users[0].firstSeenAt, '2026-01-05T00:00:00.000Z');
    const ann = d.users[1];
    assert.equal(ann.firstSeenAt, '2026-01-01T00:00:00.000Z');
    assert.equal(ann.times.last_received_at, '2026-01-02T00:00:00.000Z');
    assert.equal(ann.times.last_received_email_at, '2026-01-02T00:00:00.000Z');
    assert.equal(ann.times.last_received_push_at, '2026-01-01T00:00:00.000Z');
    assert.deepEqual(
      d.receipts.map((r) => r.userId),
      ['Ann', 'ann'],
    );
    assert.deepEqual([d.receipts[1].first, d.receipts[1].last], ['2026-01-01T00:00:00.000Z', '2026-01-02T00:00:00.000Z']);
    assert.deepEqual(d.aliases, [{ alias: 'cta', userId: 'bob', last: '2026-01-04T00:00:00.000Z' }]);
    assert.equal(d.users[2].times.last_engaged_at, '2026-01-04T00:00:00.000Z');
    assert.equal(
      d.analytics.reduce((n, a) => n + a.count, 0),
      5,
    );
  });
});

describe('filters', () => {
  it('explain what is missing or does not apply', () => {
    assert.throws(
      () => parseFilter({ type: 'received_campaign_variant', messageId: 'c1', tag: 'x' }),
      (err: unknown) => {
        assert.ok(err instanceof InvalidFilterError);
        assert.deepEqual(err.problems, [
          "variantId is required for received_campaign_variant and must be 1-64 letters, digits, '-', '_' or '.', starting with a letter or digit",
          'tag does not apply to received_campaign_variant',
        ]);
        return true;
      },
    );
    assert.throws(() => parseFilter({ type: 'last_received_message_with_tag', tag: 'x' }), /needs after and\/or before/);
    assert.throws(
      () => parseFilter({ type: 'received_message_from_canvas_step', messageId: 'k', stepId: 's', messageKind: 'campaign' }),
      /targets a canvas/,
    );
    assert.deepEqual(parseFilter({ type: 'clicked_opened_campaign', messageId: 'c1', action: 'opened' }), {
      category: 'specific',
      type: 'clicked_opened_campaign',
      target: { kind: 'campaign', id: 'c1' },
      events: ['opened'],
    });
  });
});

describe('CSV cells', () => {
  const line = (...cells: unknown[]) => stringify([cells], CSV_FORMAT);
  it('quote separators and neutralise formulas', () => {
    assert.equal(line('plain', 'a,b', 'say "hi"', 'two\nlines', 'cr\r'), 'plain,"a,b","say ""hi""","two\nlines","cr\r"\r\n');
    assert.equal(line('=HYPERLINK("x")', '+1', '-1', '@x', '\tx', '\uFF1D1'), `"'=HYPERLINK(""x"")",'+1,'-1,'@x,'\tx,'\uFF1D1\r\n`);
    assert.equal(line(null, true, false, -3, 0), ',true,false,-3,0\r\n');
  });
});
