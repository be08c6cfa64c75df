/**
 * Checks what an operator sees of an actor in the real Temporal Web UI, with headless Chromium
 * (Debian's `chromium` package, or the binary in $CHROMIUM), and saves a screenshot for the docs:
 *
 *   npm run docs:web-ui [-- <png>]       (default docs/images/actor-in-web-ui.png)
 *
 * A private dev server with its Web UI, a worker and MySQL; a campaign kept past its expiry by two
 * retargeting audiences. The page the UI renders for the actor must show its static summary and its
 * current details (why it is retained, by which audiences, and when it is counted again) under User
 * Metadata, and its timeline the deadline timer's summary; the script fails, naming what was missing,
 * when it does not. A second screenshot (`-history.png`) shows the timeline.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import type { MessageRef } from '../src/shared/types';
import { lifecycleWorkflowId } from '../src/shared/workflowId';
import { createStack, seedInteractions, waitFor, waitForState } from '../test/support/stack';

const DEFAULT_OUT = path.join(__dirname, '..', 'docs', 'images', 'actor-in-web-ui.png');

function chromiumBinary(): string {
  const candidates = [process.env.CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter((c): c is string => Boolean(c));
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw new Error('headless Chromium is needed: apt-get install chromium (or set CHROMIUM to its binary)');
  return found;
}

async function main(): Promise<void> {
  const out = path.resolve(process.argv[2] ?? DEFAULT_OUT);
  const binary = chromiumBinary();
  const stack = await createStack({ ttl: '2 seconds', cleanupInterval: '30 days', privateServer: true, webUi: true });
  try {
    await stack.startWorker();
    const ref: MessageRef = { kind: 'campaign', id: 'spring-sale' };
    await stack.db('messages').insert({ kind: ref.kind, id: ref.id, name: 'Spring sale' });
    await stack.db('message_tags').insert([
      { kind: ref.kind, message_id: ref.id, tag: 'promo' },
      { kind: ref.kind, message_id: ref.id, tag: 'spring' },
    ]);
    await seedInteractions(stack.db, ref, 500);
    await stack.db('audiences').insert([
      { id: 'seg-openers', type: 'segment', name: 'Openers of Spring sale', active: true },
      { id: 'cmp-winback', type: 'campaign', name: 'Spring win-back', active: true },
    ]);
    await stack.db('audience_filters').insert([
      { audience_id: 'seg-openers', filter_type: 'clicked_opened_campaign', target_kind: ref.kind, target_id: ref.id },
      { audience_id: 'cmp-winback', filter_type: 'received_message_from_campaign', target_kind: ref.kind, target_id: ref.id },
    ]);
    await stack.lifecycle.stop(ref.kind, ref.id);
    await waitForState(stack, ref, 'retained', 30_000);
    const workflowId = lifecycleWorkflowId(ref);
    const { runId } = await stack.client.workflow.getHandle(workflowId).describe();
    await waitFor('the actor to show why it is retained', async () => {
      const meta = await stack.client.workflow.getHandle(workflowId).query<{ currentDetails?: string }>('__temporal_workflow_metadata');
      return meta.currentDetails?.includes('Spring win-back') ?? false;
    });

    const ui = stack.server?.uiUrl;
    if (!ui) throw new Error('the dev server was started without its Web UI');
    const url = `${ui}/namespaces/${encodeURIComponent(stack.env.TEMPORAL_NAMESPACE)}/workflows/${encodeURIComponent(workflowId)}/${runId}/history`;
    const browser = await chromium.launch({ executablePath: binary, args: ['--no-sandbox', '--disable-gpu'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1440, height: 1500 } });
      await page.goto(url);
      const missing: string[] = [];
      // The UI fetches the execution, its history and its metadata query, and renders the Markdown of
      // the current details in a frame of its own: each text is looked for in every frame until shown.
      const expectShown = async (texts: string[]) => {
        for (const text of texts) {
          const deadline = Date.now() + 30_000;
          const shown = async () =>
            (await Promise.all(page.frames().map((f) => f.content().catch(() => '')))).some((html) => html.includes(text));
          while (!(await shown()) && Date.now() < deadline) await page.waitForTimeout(250);
          if (!(await shown())) missing.push(text);
        }
      };
      // The history's timeline: the deadline timer's summary.
      await expectShown(['references counted again']);
      mkdirSync(path.dirname(out), { recursive: true });
      await page.screenshot({ path: out.replace(/\.png$/, '-history.png') });
      // The User Metadata tab: static summary and details, and the current details.
      await page.getByText('User Metadata', { exact: true }).first().click();
      await expectShown(['Interaction data of campaign spring-sale', 'Openers of Spring sale', 'Spring win-back', 'Counted again at']);
      if (missing.length > 0) throw new Error(`the Web UI's page for ${workflowId} does not show: ${missing.join('; ')} (${url})`);
      await page.screenshot({ path: out, fullPage: true });
    } finally {
      await browser.close();
    }
    console.log(`the Web UI shows the actor's summary and why it is retained; screenshot in ${path.relative(process.cwd(), out)}`);
  } finally {
    await stack.close();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
