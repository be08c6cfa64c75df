/**
 * Rule 6 and 7 end to end: every feature that reads interaction data answers the same question
 * before expiry (present), after expiry (absent) and after restore (present again, identical); every
 * feature that does not read it answers identically throughout. Real Temporal actors, real MySQL,
 * a TTL of seconds.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ApiServer } from '../../src/api/app';
import { createStack, waitForState, type TestStack } from '../support/stack';
import { call, dataPlaneApi, ev } from './helpers';

const CAMPAIGN = { kind: 'campaign', id: 'spring-sale' } as const;
const CANVAS = { kind: 'canvas', id: 'onboarding' } as const;
const OTHER = { kind: 'campaign', id: 'always-on' } as const;
const T = (d: number, h = 10) => new Date(Date.UTC(2026, 0, d, h)).toISOString();

/** The 17 interaction-data filters, each matching a known set of users while the data is there. */
const INTERACTION_FILTERS: { filter: Record<string, string>; users: string[] }[] = [
  { filter: { type: 'clicked_alias_in_campaign', messageId: CAMPAIGN.id, alias: 'shop-now' }, users: ['alice'] },
  { filter: { type: 'clicked_alias_in_canvas_step', messageId: CANVAS.id, stepId: 'welcome', alias: 'get-started' }, users: ['bob'] },
  { filter: { type: 'clicked_opened_campaign', messageId: CAMPAIGN.id }, users: ['alice', 'carol'] },
  { filter: { type: 'clicked_opened_step', messageId: CANVAS.id, stepId: 'welcome' }, users: ['bob', 'dave'] },
  { filter: { type: 'converted_from_campaign', messageId: CAMPAIGN.id }, users: ['alice'] },
  { filter: { type: 'converted_from_canvas', messageId: CANVAS.id }, users: ['dave'] },
  { filter: { type: 'entered_canvas_variation', messageId: CANVAS.id, variationId: 'var-a' }, users: ['bob', 'dave'] },
  { filter: { type: 'in_campaign_control_group', messageId: CAMPAIGN.id }, users: ['erin'] },
  { filter: { type: 'in_canvas_control_group', messageId: CANVAS.id }, users: ['frank'] },
  { filter: { type: 'last_received_message_from_specific_campaign', messageId: CAMPAIGN.id, after: T(5) }, users: ['carol'] },
  {
    filter: { type: 'last_received_message_from_specific_canvas_step', messageId: CANVAS.id, stepId: 'reminder', before: T(30) },
    users: ['dave'],
  },
  { filter: { type: 'received_campaign_variant', messageId: CAMPAIGN.id, variantId: 'b' }, users: ['carol'] },
  { filter: { type: 'received_message_from_campaign', messageId: CAMPAIGN.id }, users: ['alice', 'carol'] },
  { filter: { type: 'received_message_from_canvas_step', messageId: CANVAS.id, stepId: 'welcome' }, users: ['bob', 'dave'] },
  { filter: { type: 'received_message_with_tag', tag: 'seasonal' }, users: ['alice', 'bob', 'carol', 'dave', 'gina'] },
  { filter: { type: 'clicked_opened_with_tag', tag: 'seasonal' }, users: ['alice', 'bob', 'carol', 'dave'] },
  { filter: { type: 'last_received_message_with_tag', tag: 'seasonal', after: T(1) }, users: ['alice', 'bob', 'carol', 'dave', 'gina'] },
];

/** Summary filters (rule 7): unaffected by expiry. */
const SUMMARY_FILTERS: Record<string, string>[] = [
  { type: 'last_received_any_message', after: T(1) },
  { type: 'last_received_email', after: T(1) },
  { type: 'last_received_push', after: T(1) },
  { type: 'last_received_sms', before: T(28) },
  { type: 'last_received_webhook', after: T(1) },
  { type: 'last_received_whatsapp', after: T(1) },
  { type: 'last_engaged_with_message', after: T(1) },
  { type: 'last_enrolled_in_any_control_group', after: T(1) },
  { type: 'has_never_received_message_from_campaign_or_canvas_step', messageKind: 'campaign', messageId: CAMPAIGN.id },
  { type: 'has_never_received_message_from_campaign_or_canvas_step', messageKind: 'canvas', messageId: CANVAS.id, stepId: 'welcome' },
  { type: 'clicked_alias_in_any_campaign_or_canvas_step', alias: 'shop-now' },
  { type: 'hard_bounced' },
  { type: 'marked_as_spam' },
];

describe('features obey availability: before expiry, after expiry, after restore', () => {
  let stack: TestStack;
  let api: ApiServer;

  before(async () => {
    // Long enough for every view after the restore to be taken before the restored data expires again
    // (the restore sets a fresh deadline of now + TTL), even on a busy machine.
    stack = await createStack({ ttl: '10 seconds', cleanupInterval: '1 hour' });
    await stack.startWorker();
    api = await dataPlaneApi(stack);
    await api.ready();

    for (const body of [
      {
        ...CAMPAIGN,
        name: 'Spring sale',
        tags: ['seasonal', 'promo'],
        variants: [
          { id: 'a', name: 'Variant A' },
          { id: 'b', name: 'Variant B' },
        ],
      },
      {
        ...CANVAS,
        name: 'Onboarding',
        tags: ['seasonal'],
        steps: [
          { id: 'welcome', name: 'Welcome e-mail' },
          { id: 'reminder', name: 'Reminder push' },
        ],
        variations: [
          { id: 'var-a', name: 'Variation A' },
          { id: 'control', name: 'Control' },
        ],
      },
      { ...OTHER, name: 'Always on', tags: ['seasonal'] },
    ]) {
      const res = await call(api, 'POST', '/v1/messages', body);
      assert.equal(res.status, 201, res.text);
    }
    const c = { messageKind: 'campaign' as const, messageId: CAMPAIGN.id };
    const k = { messageKind: 'canvas' as const, messageId: CANVAS.id };
    const events = [
      ev({ ...c, type: 'received', userId: 'alice', variantId: 'a', channel: 'email', at: T(2) }),
      ev({ ...c, type: 'opened', userId: 'alice', variantId: 'a', channel: 'email', at: T(2, 11) }),
      ev({ ...c, type: 'clicked', userId: 'alice', variantId: 'a', channel: 'email', alias: 'shop-now', at: T(2, 12) }),
      ev({ ...c, type: 'converted', userId: 'alice', variantId: 'a', at: T(3) }),
      ev({ ...c, type: 'received', userId: 'carol', variantId: 'b', channel: 'push', at: T(6) }),
      ev({ ...c, type: 'opened', userId: 'carol', variantId: 'b', channel: 'push', at: T(6, 12) }),
      ev({ ...c, type: 'control_group', userId: 'erin', at: T(2) }),
      ev({ ...c, type: 'hard_bounced', userId: 'carol', variantId: 'b', channel: 'email', at: T(7) }),
      ev({ ...k, type: 'entered_variation', userId: 'bob', variationId: 'var-a', at: T(3) }),
      ev({ ...k, type: 'received', userId: 'bob', stepId: 'welcome', variationId: 'var-a', channel: 'email', at: T(3, 11) }),
      ev({ ...k, type: 'clicked', userId: 'bob', stepId: 'welcome', channel: 'email', alias: 'get-started', at: T(3, 12) }),
      ev({ ...k, type: 'entered_variation', userId: 'dave', variationId: 'var-a', at: T(4) }),
      ev({ ...k, type: 'received', userId: 'dave', stepId: 'welcome', channel: 'sms', at: T(4, 11) }),
      ev({ ...k, type: 'opened', userId: 'dave', stepId: 'welcome', channel: 'email', at: T(4, 12) }),
      ev({ ...k, type: 'received', userId: 'dave', stepId: 'reminder', channel: 'webhook', at: T(8) }),
      ev({ ...k, type: 'converted', userId: 'dave', at: T(9) }),
      ev({ ...k, type: 'exited', userId: 'dave', at: T(10) }),
      ev({ ...k, type: 'control_group', userId: 'frank', variationId: 'control', at: T(3) }),
      ev({ ...k, type: 'marked_spam', userId: 'frank', channel: 'email', at: T(5) }),
      // An unrelated message stays available throughout: it must keep answering.
      ev({ messageKind: 'campaign', messageId: OTHER.id, type: 'received', userId: 'gina', channel: 'whatsapp', at: T(11) }),
      ev({ messageKind: 'campaign', messageId: OTHER.id, type: 'received', userId: 'alice', channel: 'email', at: T(12) }),
    ];
    const res = await call(api, 'POST', '/v1/interactions', { events });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body, { received: events.length, stored: events.length, duplicates: 0, erased: 0 });
  });
  after(async () => {
    await api?.close();
    await stack?.close();
  });

  /** Everything rule 6 covers, for the two messages under test. */
  async function interactionDataView() {
    const filters = [];
    for (const f of INTERACTION_FILTERS) {
      const res = await call<{ userIds: string[] }>(api, 'POST', '/v1/retargeting/evaluate', { filter: f.filter });
      assert.equal(res.status, 200, res.text);
      filters.push(res.body.userIds);
    }
    const profiles = [];
    for (const u of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank']) {
      const res = await call<Record<string, unknown>>(api, 'GET', `/v1/users/${u}`);
      assert.equal(res.status, 200, res.text);
      profiles.push({ campaigns: res.body.campaignsReceived, canvases: res.body.canvasMessagesReceived });
    }
    const exported = await call(api, 'POST', '/v1/users/export', {
      external_ids: ['alice', 'bob', 'carol', 'dave', 'erin', 'frank'],
      fields_to_export: ['external_id', 'campaigns_received', 'canvases_received'],
    });
    assert.equal(exported.status, 200, exported.text);
    const csvCampaign = await call(api, 'GET', `/v1/messages/campaign/${CAMPAIGN.id}/user-data.csv`);
    const csvCanvas = await call(api, 'GET', `/v1/messages/canvas/${CANVAS.id}/user-data.csv`);
    const csv = (r: { status: number; text: string; body: unknown; headers: Record<string, unknown> }) => ({
      status: r.status,
      text: r.text,
      body: r.body,
      type: r.headers['content-type'],
    });
    return { filters, profiles, exported: exported.body, csvCampaign: csv(csvCampaign), csvCanvas: csv(csvCanvas) };
  }

  /** Everything rule 7 covers. */
  async function unaffectedView() {
    const filters = [];
    for (const f of SUMMARY_FILTERS) {
      const res = await call<{ userIds: string[] }>(api, 'POST', '/v1/retargeting/evaluate', { filter: f });
      assert.equal(res.status, 200, `${JSON.stringify(f)}: ${res.text}`);
      filters.push(res.body.userIds);
    }
    const analytics = [];
    for (const m of [CAMPAIGN, CANVAS]) {
      const res = await call(api, 'GET', `/v1/messages/${m.kind}/${m.id}/analytics`);
      assert.equal(res.status, 200, res.text);
      analytics.push(res.body);
    }
    const summaries = [];
    for (const u of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'gina']) {
      const res = await call<Record<string, unknown>>(api, 'GET', `/v1/users/${u}`);
      summaries.push({ id: res.body.id, firstSeenAt: res.body.firstSeenAt, summary: res.body.summary });
    }
    const other = await call<{ userIds: string[] }>(api, 'POST', '/v1/retargeting/evaluate', {
      filter: { type: 'received_message_from_campaign', messageId: OTHER.id },
    });
    const setup = [];
    for (const m of [CAMPAIGN, CANVAS]) {
      const res = await call(api, 'GET', `/v1/messages/${m.kind}/${m.id}/definition`);
      assert.equal(res.status, 200, res.text);
      setup.push(res.body);
    }
    return { filters, analytics, summaries, other: other.body.userIds, setup };
  }

  it('answers every feature from the data before expiry, leaves expired data out, and gives it back identical after restore', async () => {
    const beforeExpiry = await interactionDataView();

    // Present: each filter finds exactly its users.
    INTERACTION_FILTERS.forEach((f, i) => assert.deepEqual(beforeExpiry.filters[i], f.users, `${f.filter.type} before expiry`));
    const alice = beforeExpiry.profiles[0];
    assert.deepEqual(
      (alice.campaigns as { id: string }[]).map((c) => c.id),
      [OTHER.id, CAMPAIGN.id],
      'alice received both campaigns, most recent first',
    );
    const users = (beforeExpiry.exported as { users: Record<string, unknown>[] }).users;
    const aliceExport = users[0] as { campaigns_received: Record<string, unknown>[] };
    const spring = aliceExport.campaigns_received.find((c) => c.api_campaign_id === CAMPAIGN.id);
    assert.deepEqual(spring, {
      name: 'Spring sale',
      last_received: T(2),
      engaged: { opened_email: true, opened_push: false, clicked_email: true, clicked_triggered_in_app_message: false },
      converted: true,
      api_campaign_id: CAMPAIGN.id,
      variation_name: 'Variant A',
      variation_api_id: 'a',
      in_control: false,
    });
    const always = aliceExport.campaigns_received.find((c) => c.api_campaign_id === OTHER.id);
    assert.ok(always && !('variation_name' in always), 'single-variant campaigns carry no variation fields');
    const daveExport = users[3] as { canvases_received: Record<string, unknown>[] };
    assert.deepEqual(daveExport.canvases_received, [
      {
        name: 'Onboarding',
        api_canvas_id: CANVAS.id,
        last_received_message: T(8),
        last_entered: T(4),
        variation_name: 'Variation A',
        in_control: false,
        last_exited: T(10),
        steps_received: [
          { name: 'Reminder push', api_canvas_step_id: 'reminder', last_received: T(8) },
          { name: 'Welcome e-mail', api_canvas_step_id: 'welcome', last_received: T(4, 11) },
        ],
      },
    ]);
    const frankExport = users[5] as { canvases_received: Record<string, unknown>[] };
    assert.equal(frankExport.canvases_received[0]?.in_control, true);
    assert.equal(beforeExpiry.csvCampaign.status, 200);
    assert.match(String(beforeExpiry.csvCampaign.type), /text\/csv/);
    const campaignLines = beforeExpiry.csvCampaign.text.trim().split('\r\n');
    assert.equal(
      campaignLines[0],
      'user_id,variant_api_id,variant_name,in_control,first_received,last_received,times_received,last_opened,last_clicked,converted,last_converted',
    );
    assert.deepEqual(
      campaignLines.slice(1).map((l) => l.split(',')[0]),
      ['alice', 'carol', 'erin'],
    );
    assert.equal(campaignLines[1], `alice,a,Variant A,false,${T(2)},${T(2)},1,${T(2, 11)},${T(2, 12)},true,${T(3)}`);
    const canvasLines = beforeExpiry.csvCanvas.text.trim().split('\r\n');
    assert.deepEqual(
      canvasLines.slice(1).map((l) => l.split(',')[0]),
      ['bob', 'dave', 'frank'],
    );
    assert.match(canvasLines[2], /^dave,var-a,Variation A,false,.*,Reminder push; Welcome e-mail,/);

    // Both messages stop; with a TTL of seconds and no references they expire.
    for (const m of [CAMPAIGN, CANVAS]) {
      const res = await call(api, 'PUT', `/v1/messages/${m.kind}/${m.id}`, { status: 'stopped' });
      assert.equal(res.status, 200, res.text);
    }
    // Taken once stopped (the setup now says so) and whether or not the data has expired yet: none of
    // these read interaction rows.
    const unaffectedBefore = await unaffectedView();
    await waitForState(stack, CAMPAIGN, 'expired', 30_000);
    await waitForState(stack, CANVAS, 'expired', 30_000);

    const expired = await interactionDataView();
    const expectedAfterExpiry = INTERACTION_FILTERS.map((f) =>
      f.filter.tag ? (f.filter.type === 'clicked_opened_with_tag' ? [] : ['alice', 'gina']) : [],
    );
    INTERACTION_FILTERS.forEach((f, i) => assert.deepEqual(expired.filters[i], expectedAfterExpiry[i], `${f.filter.type} after expiry`));
    const excluded = await call<{ excludedMessages: unknown[] }>(api, 'POST', '/v1/retargeting/evaluate', {
      filter: INTERACTION_FILTERS[12].filter,
    });
    assert.deepEqual(excluded.body.excludedMessages, [{ kind: 'campaign', id: CAMPAIGN.id, state: 'expired' }]);
    assert.deepEqual(
      expired.profiles.map((p) => [(p.campaigns as { id: string }[]).map((c) => c.id), (p.canvases as unknown[]).length]),
      [
        [[OTHER.id], 0],
        [[], 0],
        [[], 0],
        [[], 0],
        [[], 0],
        [[], 0],
      ],
      'profiles keep only the available campaign',
    );
    const expiredUsers = (
      expired.exported as { users: { campaigns_received: { api_campaign_id: string }[]; canvases_received: unknown[] }[] }
    ).users;
    assert.deepEqual(
      expiredUsers.map((u) => [u.campaigns_received.map((c) => c.api_campaign_id), u.canvases_received.length]),
      [
        [[OTHER.id], 0],
        [[], 0],
        [[], 0],
        [[], 0],
        [[], 0],
        [[], 0],
      ],
    );
    for (const [csv, ref] of [
      [expired.csvCampaign, CAMPAIGN],
      [expired.csvCanvas, CANVAS],
    ] as const) {
      assert.equal(csv.status, 409, csv.text);
      const body = csv.body as { error: string; message: string };
      assert.equal(body.error, 'interaction_data_expired');
      assert.match(body.message, /has expired/);
      assert.ok(body.message.includes(`POST /v1/messages/${ref.kind}/${ref.id}/restore`), body.message);
    }

    // Unaffected features answer exactly as before.
    assert.deepEqual(await unaffectedView(), unaffectedBefore);

    // Restore both: everything comes back, identical.
    for (const m of [CAMPAIGN, CANVAS]) await stack.lifecycle.restore(m.kind, m.id, { requestedBy: 'ops@example.com' });
    await waitForState(stack, CAMPAIGN, 'stopped', 30_000);
    await waitForState(stack, CANVAS, 'stopped', 30_000);
    const restored = await interactionDataView();
    assert.deepEqual(restored, beforeExpiry);
    assert.deepEqual(await unaffectedView(), unaffectedBefore);
  });
});
