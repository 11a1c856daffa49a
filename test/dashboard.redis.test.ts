/**
 * The dashboard in a real browser (Debian's Chromium driven by playwright-core) against the real API,
 * Redis and two workers: a key typed into the page, a run followed live, a node opened with the
 * keyboard, a run cancelled with the button, parent and child runs linked, the blueprints drawn.
 * Screenshots go to test-output/screenshots/ for review.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createApi, type Api } from '../src/api/app.js';
import { ApiKeyStore } from '../src/api/keys.js';
import { BlueprintRegistry } from '../src/blueprint/load.js';
import { STATUS_COLOURS } from '../src/drawing/svg.js';
import { startApiServer, type ApiServer } from '../src/local/dev-server.js';
import { silentLogger } from '../src/logger.js';
import { createNodeKinds } from '../src/nodes/index.js';
import type { NodeKind } from '../src/types/node-kind.js';
import { indexedChildRunId } from '../src/types/ids.js';
import { startHarness, type Harness } from './support/harness.js';
import { WORKFLOWS_DIR } from './support/seeds.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'];
const SCREENSHOTS = fileURLToPath(new URL('../test-output/screenshots/', import.meta.url));
/** Playwright's auto-waiting limit for each step. */
const STEP_MS = 20_000;

/** A `gate` node kind: waits until the test opens it for that run, or the run is cancelled. */
class Gates {
  private readonly opened = new Set<string>();
  private readonly waiting = new Map<string, Array<() => void>>();

  open(runId: string): void {
    this.opened.add(runId);
    for (const wake of this.waiting.get(runId) ?? []) wake();
    this.waiting.delete(runId);
  }

  kind(): NodeKind<Record<string, unknown>> {
    return {
      name: 'gate',
      params: z.object({}).strict(),
      reads: () => ({ context: [], outputs: [] }),
      run: (ctx) =>
        new Promise((resolve, reject) => {
          const pass = () => resolve({ output: 'the test opened the gate' });
          if (this.opened.has(ctx.runId)) return pass();
          this.waiting.set(ctx.runId, [...(this.waiting.get(ctx.runId) ?? []), pass]);
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
        }),
    };
  }
}

/** begin → (hold: the gate → nap: a few seconds' sleep) and quick, joined by finish. */
const DASHBOARD_TEST = {
  id: 'dashboard-test',
  metadata: { title: 'Dashboard test', description: 'A gate the test opens, then a few seconds of sleep, beside a quick branch.', sampleInput: { who: 'Chromium' } },
  nodes: [
    { id: 'begin', uses: 'template', params: { template: 'Hello, {{who}}.', inputs: { who: 'who' } } },
    { id: 'hold', uses: 'gate' },
    { id: 'nap', uses: 'sleep', params: { ms: 2500 } },
    { id: 'quick', uses: 'template', params: { template: '{{greeting}} (quick branch)', inputs: { greeting: 'begin' } } },
    { id: 'finish', uses: 'output', params: { template: '{{quick}} Done after the gate and the nap.', inputs: { quick: 'quick' } } },
  ],
  edges: [
    { source: 'begin', target: 'hold' },
    { source: 'begin', target: 'quick' },
    { source: 'hold', target: 'nap' },
    { source: 'nap', target: 'finish' },
    { source: 'quick', target: 'finish' },
  ],
};

/** A wait node with two answers: the page shows its prompt, a button per action and a payload box. */
const DASHBOARD_APPROVAL = {
  id: 'dashboard-approval',
  nodes: [
    { id: 'review', uses: 'wait', params: { prompt: 'Publish the post by {{who}}?', inputs: { who: 'who' }, timeout: '1h' } },
    { id: 'publish', uses: 'output', params: { template: 'published' } },
    { id: 'discard', uses: 'output', params: { template: 'discarded' } },
  ],
  edges: [{ source: 'review', target: 'publish', action: 'approve' }, { source: 'review', target: 'discard', action: 'reject' }],
};
/** A map whose items wait at the gate (the item "bad" fails at once), then a loop of three iterations. */
const DASHBOARD_ITEM = {
  id: 'dashboard-item',
  nodes: [
    { id: 'check', uses: 'route', params: { rules: [{ when: 'context.item == "bad"', action: 'bad' }], default: 'ok' } },
    { id: 'explode', uses: 'route', params: { rules: [] } },
    { id: 'hold', uses: 'gate' },
    { id: 'say', uses: 'output', params: { template: 'item {{item}}', inputs: { item: 'item' } } },
  ],
  edges: [{ source: 'check', target: 'explode', action: 'bad' }, { source: 'check', target: 'hold', action: 'ok' }, { source: 'hold', target: 'say' }],
};
const DASHBOARD_MAP_LOOP = {
  id: 'dashboard-map-loop',
  nodes: [
    { id: 'fan', uses: 'map', params: { items: 'items', blueprintId: 'dashboard-item', concurrency: 3, continueOnError: true } },
    { id: 'polish', uses: 'loop', params: { blueprintId: 'loop-polish-step', carry: { draft: 'draft' }, until: 'context.draft == "!!!"', maxIterations: 5 } },
  ],
  edges: [{ source: 'fan', target: 'polish' }],
};

const gates = new Gates();
let h: Harness;
let api: Api;
let server: ApiServer;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let apiKey = '';
/** Errors the page reported (uncaught exceptions, console errors such as CSP violations). */
const pageErrors: string[] = [];

async function call(method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${apiKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return res.json();
}

async function screenshot(name: string): Promise<void> {
  await page.screenshot({ path: `${SCREENSHOTS}${name}.png`, fullPage: true });
}

/**
 * The page's globals as the functions run inside it see them (this file compiles without the DOM
 * library; those functions are sent to the browser as text, so they name `globalThis`, not a variable).
 */
type BrowserGlobals = {
  getComputedStyle(el: unknown): { fill: string };
  document: { querySelector(selector: string): unknown; activeElement: { getAttribute(name: string): string | null } | null };
  marker?: string;
};

/** Waits (Playwright polling, no sleeps) until a node's box in the graph is painted `hex`. */
async function waitForFill(nodeId: string, hex: string): Promise<void> {
  const n = Number.parseInt(hex.slice(1), 16);
  const expected = `rgb(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255})`;
  await page.waitForFunction(
    ([selector, colour]) => {
      const g = globalThis as unknown as BrowserGlobals;
      const rect = g.document.querySelector(selector!);
      return rect !== null && g.getComputedStyle(rect).fill === colour;
    },
    [`svg.graph [data-node-id="${nodeId}"] rect.frame`, expected] as const,
  );
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install -y chromium`);
  mkdirSync(SCREENSHOTS, { recursive: true });
  const registry = await BlueprintRegistry.load([WORKFLOWS_DIR], createNodeKinds().with(gates.kind()));
  registry.add(DASHBOARD_TEST);
  registry.add(DASHBOARD_APPROVAL);
  registry.add(DASHBOARD_ITEM);
  registry.add(DASHBOARD_MAP_LOOP);
  h = await startHarness({ blueprints: registry });
  const keys = new ApiKeyStore(h.client.store.redis, h.prefix);
  apiKey = (await keys.create({ tenant: 'acme', scopes: ['runs:read', 'runs:write'], name: 'dashboard test' })).key;
  api = createApi({ client: h.client, blueprints: registry, auth: { mode: 'keys', keys }, logger: silentLogger });
  server = await startApiServer(api);
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  context = await browser.newContext({ viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1 });
  context.setDefaultTimeout(STEP_MS);
  page = await context.newPage();
  page.on('pageerror', (err) => pageErrors.push(`pageerror: ${err.message}`));
  page.on('console', (message) => {
    // A 401 before the key is typed is expected; anything else in red is a bug.
    if (message.type() === 'error' && !/status of 401/.test(message.text())) pageErrors.push(`console: ${message.text()}`);
  });
});

afterAll(async () => {
  await context?.close().catch(() => undefined);
  await browser?.close().catch(() => undefined);
  await server?.close();
  await api?.close();
  await h?.close();
});

describe('dashboard in Chromium', () => {
  let moderationRunId = '';

  it('asks for an API key, then lists the runs', async () => {
    // A finished run with LLM nodes and a subflow, so the list shows tokens.
    const started = await call('POST', '/runs', { blueprintId: 'content-moderation', input: h.registry.get('content-moderation')!.blueprint.metadata!.sampleInput });
    moderationRunId = started.runId;
    expect((await call('GET', `/runs/${moderationRunId}?wait=20`)).status).toBe('completed');

    await page.goto(`${server.url}/`);
    expect(page.url()).toBe(`${server.url}/dashboard/`);
    await page.locator('#notice').getByText('This server needs an API key.').waitFor();
    await screenshot('01-api-key-needed');

    await page.locator('#api-key').fill(apiKey);
    await page.locator('#api-key').press('Enter');
    const row = page.locator(`tr[data-run-id="${moderationRunId}"]`);
    await row.waitFor();
    expect(await page.locator('#notice').isHidden()).toBe(true);
    expect(await row.getAttribute('data-status')).toBe('completed');
    expect(await row.locator('td').nth(2).innerText()).toBe('content-moderation');
    // Tokens: the offline provider reports usage for its LLM nodes.
    expect(Number((await row.locator('td').nth(5).innerText()).replace(/\D/g, ''))).toBeGreaterThan(0);
    await screenshot('02-runs-list');
  });

  it('starts a run from the blueprints page and follows it live, node by node', async () => {
    await page.locator('nav.nav a', { hasText: 'Blueprints' }).click();
    const card = page.locator('[data-blueprint-id="dashboard-test"]');
    await card.locator('svg.graph').waitFor();
    await card.getByRole('button', { name: 'Start run' }).click();
    const dialog = page.locator('#start-dialog');
    await dialog.getByRole('button', { name: 'Start run' }).click();
    await page.waitForURL(/#\/runs\/[0-9a-f-]{36}$/);
    const runId = decodeURIComponent(page.url().split('#/runs/')[1]!);

    // The gate holds the run: hold is running, the quick branch is done, nap has not started.
    await page.locator('svg.graph [data-node-id="hold"][data-status="running"]').waitFor();
    await page.locator('svg.graph [data-node-id="quick"][data-status="done"]').waitFor();
    expect(await page.locator('svg.graph [data-node-id="nap"]').getAttribute('data-status')).toBe('pending');
    expect(await page.locator('#run-status').getAttribute('data-run-status')).toBe('running');
    await waitForFill('hold', STATUS_COLOURS.running.fill);

    // Everything from here arrives through the events long poll: the page is never reloaded.
    await page.evaluate(() => ((globalThis as unknown as BrowserGlobals).marker = 'same page'));
    gates.open(runId);
    await page.locator('svg.graph [data-node-id="nap"][data-status="running"]').waitFor();
    await waitForFill('nap', STATUS_COLOURS.running.fill);
    await page.locator('svg.gantt .bar-running[data-node-id="nap"]').waitFor();
    await screenshot('03-run-live');
    await page.locator('svg.graph [data-node-id="nap"][data-status="done"]').waitFor();
    await waitForFill('nap', STATUS_COLOURS.done.fill);
    await page.locator('#run-status[data-run-status="completed"]').waitFor();
    expect(await page.evaluate(() => (globalThis as unknown as BrowserGlobals).marker)).toBe('same page');
    expect(await page.locator('#cancel-run').isHidden()).toBe(true);
    // One bar per attempt, each on the worker that ran it (the last events may come a poll after the status).
    await page.locator('svg.gantt .bar-done[data-node-id="finish"]').waitFor();
    expect(await page.locator('svg.gantt .bar').count()).toBe(5);
    expect(await page.locator('svg.gantt .bar-done').count()).toBe(5);
    expect(await page.locator('svg.gantt text.worker').allTextContents()).toEqual(expect.arrayContaining([expect.stringMatching(/^w[12]$/)]));
    await screenshot('04-run-completed');

    // The keyboard opens a node: focus it, press Enter; Escape closes and gives focus back.
    const finish = page.locator('svg.graph [data-node-id="finish"]');
    expect(await finish.getAttribute('role')).toBe('button');
    expect(await finish.getAttribute('aria-label')).toBe('finish (output): done. Show details');
    await finish.focus();
    await page.keyboard.press('Enter');
    const details = page.locator('#node-dialog');
    await details.locator('h2', { hasText: 'finish' }).waitFor();
    expect(await details.locator('#node-output').innerText()).toBe('Hello, Chromium. (quick branch) Done after the gate and the nap.');
    expect(await details.innerText()).toContain('"template": "{{quick}} Done after the gate and the nap."');
    await screenshot('05-node-details');
    await page.keyboard.press('Escape');
    await details.waitFor({ state: 'hidden' });
    expect(await page.evaluate(() => (globalThis as unknown as BrowserGlobals).document.activeElement?.getAttribute('data-node-id'))).toBe('finish');
  });

  it('cancels a running run with the Cancel button', async () => {
    const { runId } = await call('POST', '/runs', { blueprintId: 'dashboard-test', input: { who: 'nobody' } });
    await page.goto(`${server.url}/dashboard/#/runs/${runId}`);
    await page.locator('svg.graph [data-node-id="hold"][data-status="running"]').waitFor();
    await page.locator('#cancel-run').click();
    await page.locator('#run-status[data-run-status="cancelled"]').waitFor();
    await page.locator('svg.graph [data-node-id="hold"][data-status="cancelled"]').waitFor();
    expect(await page.locator('svg.graph [data-node-id="nap"]').getAttribute('data-status')).toBe('cancelled');
    await waitForFill('hold', STATUS_COLOURS.cancelled.fill);
    await page.locator('#cancel-run').waitFor({ state: 'hidden' });
    expect((await call('GET', `/runs/${runId}`)).status).toBe('cancelled');
    await screenshot('06-run-cancelled');

    // The list shows it, and its status filter finds it.
    await page.goto(`${server.url}/dashboard/#/`);
    await page.locator('#status-filter').selectOption('cancelled');
    await page.waitForURL(/status=cancelled/);
    await page.locator(`tr[data-run-id="${runId}"]`).waitFor();
    expect(await page.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-status')))).toEqual(['cancelled']);
  });

  it('redrives a cancelled run with the Redrive button and follows it again until it completes', async () => {
    const { runId } = await call('POST', '/runs', { blueprintId: 'dashboard-test', input: { who: 'again' } });
    await page.goto(`${server.url}/dashboard/#/runs/${runId}`);
    await page.locator('svg.graph [data-node-id="hold"][data-status="running"]').waitFor();
    await page.locator('svg.graph [data-node-id="quick"][data-status="done"]').waitFor();
    expect(await page.locator('#redrive-run').isHidden()).toBe(true);
    await page.locator('#cancel-run').click();
    await page.locator('#run-status[data-run-status="cancelled"]').waitFor();
    await page.locator('#redrive-run').click();
    await page.locator('#run-status[data-run-status="running"]').waitFor();
    expect(await page.locator('#run-redrives').innerText()).toBe('1');
    await page.locator('#redrive-run').waitFor({ state: 'hidden' });
    await page.locator('svg.graph [data-node-id="hold"][data-status="running"]').waitFor();
    // The quick branch was done before the cancel: it stays done.
    expect(await page.locator('svg.graph [data-node-id="quick"]').getAttribute('data-status')).toBe('done');
    gates.open(runId);
    await page.locator('#run-status[data-run-status="completed"]').waitFor({ timeout: STEP_MS });
    await page.locator('#redrive-run').waitFor({ state: 'hidden' });
    const view = await call('GET', `/runs/${runId}`);
    expect(view).toMatchObject({ status: 'completed', redrives: 1 });
    const events = (await call('GET', `/runs/${runId}/events`)).events as Array<{ type: string; node?: string }>;
    expect(events.filter((e) => e.type === 'node.started' && e.node === 'quick')).toHaveLength(1);
    expect(events.filter((e) => e.type === 'run.redriven')).toHaveLength(1);
    await screenshot('06b-run-redriven');
  });

  it('shows a failed run\'s Redrive button; a redrive that fails again counts one redrive', async () => {
    const { runId } = await call('POST', '/runs', { blueprintId: 'dashboard-item', input: { item: 'bad' } });
    await page.goto(`${server.url}/dashboard/#/runs/${runId}`);
    await page.locator('#run-status[data-run-status="failed"]').waitFor();
    expect(await page.locator('#cancel-run').isHidden()).toBe(true);
    await page.locator('#redrive-run').click();
    await page.locator('#run-redrives', { hasText: '1' }).waitFor();
    await page.locator('#run-status[data-run-status="failed"]').waitFor();
    await page.locator('#redrive-run').waitFor({ state: 'visible' });
    expect(await call('GET', `/runs/${runId}`)).toMatchObject({ status: 'failed', redrives: 1, error: { nodeId: 'explode' } });
  });

  it('shows a waiting node\'s prompt with a button per action and a payload box, and signals it', async () => {
    const { runId } = await call('POST', '/runs', { blueprintId: DASHBOARD_APPROVAL.id, input: { who: 'Ada' } });
    await page.goto(`${server.url}/dashboard/#/runs/${runId}`);
    const form = page.locator('#signals [data-signal-node="review"]');
    await form.waitFor();
    expect(await form.locator('[data-signal-prompt="review"]').innerText()).toBe('Publish the post by Ada?');
    expect(await form.locator('button[data-signal-action]').allInnerTexts()).toEqual(['approve', 'reject']);
    await page.locator('svg.graph [data-node-id="review"][data-status="waiting"]').waitFor();
    await waitForFill('review', STATUS_COLOURS.waiting.fill);

    // Not JSON: refused in the page, nothing sent.
    await form.locator('textarea').fill('{not json');
    await form.locator('button[data-signal-action="approve"]').click();
    await form.getByRole('alert').getByText(/not valid JSON/).waitFor();
    expect((await call('GET', `/runs/${runId}`)).nodes.review.status).toBe('waiting');

    await form.locator('textarea').fill('{"by": "chromium"}');
    await screenshot('07a-waiting-for-signal');
    await form.locator('button[data-signal-action="approve"]').click();
    await page.locator('#run-status[data-run-status="completed"]').waitFor();
    await page.locator('#signals').waitFor({ state: 'hidden' });
    await page.locator('svg.graph [data-node-id="publish"][data-status="done"]').waitFor();
    expect(await page.locator('svg.graph [data-node-id="discard"]').getAttribute('data-status')).toBe('skipped');
    const view = await call('GET', `/runs/${runId}`);
    expect(view).toMatchObject({ status: 'completed', outputs: { review: { by: 'chromium' } } });
  });

  it('links a subflow node to its child run and the child back to its parent', async () => {
    await page.goto(`${server.url}/dashboard/#/runs/${moderationRunId}`);
    await page.locator('#run-status[data-run-status="completed"]').waitFor();
    // The sample post has an e-mail address and a phone number: the redact branch ran, the others were skipped.
    await page.locator('svg.graph [data-node-id="redact"][data-status="done"]').waitFor();
    expect(await page.locator('svg.graph [data-node-id="ban"]').getAttribute('data-status')).toBe('skipped');
    // On the timeline, the subflow node's bar shows the time it spent waiting for its child run.
    expect(await page.locator('svg.gantt .bar[data-node-id="redact"] rect.waiting').count()).toBe(1);
    await screenshot('07-moderation-run');
    await page.locator('svg.graph [data-node-id="redact"]').focus();
    await page.keyboard.press(' ');
    await page.locator('#child-run-link').click();
    await page.locator('#parent-link').waitFor();
    expect(await page.locator('#run-status').getAttribute('data-run-status')).toBe('completed');
    await screenshot('08-child-run');
    await page.locator('#parent-link').click();
    await page.waitForURL(new RegExp(`#/runs/${moderationRunId}$`));
    await page.locator('svg.graph [data-node-id="redact"]').waitFor();
    // An LLM node's details show the prompt it sent (its input as the model saw it).
    await page.locator('svg.graph [data-node-id="check_pii"]').focus();
    await page.keyboard.press('Enter');
    expect(await page.locator('#node-prompt').innerText()).toContain('mail me at dana.reyes@example.com');
    await screenshot('11-llm-node-prompt');
    await page.keyboard.press('Escape');
  });

  it('shows a map node\'s children done so far (and failed), then a loop node\'s iterations, live', async () => {
    const { runId } = await call('POST', '/runs', { blueprintId: 'dashboard-map-loop', input: { items: ['a', 'bad', 'c'] } });
    await page.goto(`${server.url}/dashboard/#/runs/${runId}`);
    // "bad" failed at once; a and c wait at their gates.
    const fan = page.locator('svg.graph [data-node-id="fan"]');
    await page.locator('svg.graph [data-node-id="fan"][data-progress="1 of 3 done, 1 failed"]').waitFor();
    expect(await fan.getAttribute('data-status')).toBe('running');
    expect(await fan.getAttribute('aria-label')).toBe('fan (map): running, 1 of 3 done, 1 failed. Show details');
    expect(await fan.locator('.node-uses').textContent()).toBe('1/3 · 1 failed');
    await screenshot('12-map-in-flight');
    await fan.focus();
    await page.keyboard.press('Enter');
    const details = page.locator('#node-dialog');
    await details.locator('#fan-out-progress', { hasText: 'Child runs: 1 of 3 done, 1 failed, 2 running.' }).waitFor();
    await screenshot('13-map-details');
    await page.keyboard.press('Escape');

    gates.open(indexedChildRunId(runId, 'fan', 1, 0));
    await page.locator('svg.graph [data-node-id="fan"][data-progress="2 of 3 done, 1 failed"]').waitFor();
    gates.open(indexedChildRunId(runId, 'fan', 1, 2));
    await page.locator('#run-status[data-run-status="completed"]').waitFor();
    await page.locator('svg.graph [data-node-id="fan"][data-progress="3 of 3 done, 1 failed"]').waitFor();
    const polish = page.locator('svg.graph [data-node-id="polish"][data-progress="3 iterations"]');
    await polish.waitFor();
    await polish.focus();
    await page.keyboard.press('Enter');
    await details.locator('#iteration-links li').nth(2).waitFor();
    expect(await details.locator('#iteration-links li').count()).toBe(3);
    expect(await details.locator('#iteration-links a').allTextContents()).toEqual(['iteration 1', 'iteration 2', 'iteration 3']);
    await screenshot('14-loop-iterations');
    await details.locator('#iteration-links a').nth(1).click();
    await page.locator('#parent-link').waitFor();
    expect(await page.locator('.lineage').innerText()).toMatch(/node polish, child #2$/);
  });

  it('draws every registered blueprint with its analysis', async () => {
    await page.goto(`${server.url}/dashboard/#/blueprints`);
    const card = page.locator('[data-blueprint-id="content-moderation"]');
    await card.locator('svg.graph').waitFor();
    expect(await page.locator('.blueprint-card').count()).toBe(h.registry.ids().length);
    expect(await card.locator('svg.graph g.node').count()).toBe(9);
    const fact = (label: string) => card.locator('.analysis .fact', { has: page.locator('dt', { hasText: label }) }).locator('dd code').allTextContents();
    expect(await fact('Start nodes')).toEqual(['check_pii', 'check_hate', 'check_spam']);
    expect(await fact('Terminal nodes')).toEqual(['log']);
    await card.scrollIntoViewIfNeeded();
    await page.screenshot({ path: `${SCREENSHOTS}09-blueprints.png` });
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.goto(`${server.url}/dashboard/#/runs/${moderationRunId}`);
    await page.locator('#run-status[data-run-status="completed"]').waitFor();
    await screenshot('10-run-laptop');
  });

  it('needs no key when the server runs without authentication', async () => {
    const openApi = createApi({ client: h.client, blueprints: h.registry, auth: { mode: 'off' }, logger: silentLogger });
    const open = await startApiServer(openApi);
    const local = await context.newPage();
    try {
      await local.goto(`${open.url}/dashboard/`);
      await local.locator('.key-chip.open').getByText('No authentication').waitFor();
      await local.getByText('No runs yet.').waitFor();
      expect(await local.locator('#api-key').count()).toBe(0);
    } finally {
      await local.close();
      await open.close();
      await openApi.close();
    }
    expect(pageErrors).toEqual([]);
  });
});
