/**
 * The status page in a real headless Chromium (Debian `chromium` driven by playwright-core) against a running
 * `dev` stack: live pods, live update on scale-out, the browser test client, the reference client loaded
 * as a plain ES module in the page, and falling load: the cordoned pod and planned victim marked; keyed clients:
 * keys per pod and a key lookup. Saves artifacts/status-page.png.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import ts from 'typescript';
import { WebSocket } from 'ws';
import { EdgeClient } from '../examples/client.js';
import { loadConfig } from '../src/config.js';
import { start as startDev } from '../app/dev.js';
import { createLogger } from '../src/logger.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'];
const UI_TIMEOUT_MS = 30_000;
const SCREENSHOT = path.join('artifacts', 'status-page.png');

interface ApiPods {
  pods: Array<{ podId: string }>;
}

/** The status page at `url` in a fresh headless Chromium profile; page errors are collected. */
interface StatusPage {
  page: Page;
  pageErrors: string[];
  close(): Promise<void>;
}

async function openStatusPage(url: string): Promise<StatusPage> {
  const userDataDir = mkdtempSync(path.join(os.tmpdir(), 'rtc-edge-chromium-'));
  let context: BrowserContext | undefined;
  const close = async () => {
    await context?.close();
    rmSync(userDataDir, { recursive: true, force: true });
  };
  try {
    context = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, args: CHROMIUM_ARGS, viewport: { width: 1400, height: 1000 } });
    const page = await context.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));
    await page.goto(`${url}/`);
    return { page, pageErrors, close };
  } catch (err) {
    await close();
    throw err;
  }
}

async function podIds(url: string): Promise<string[]> {
  const body = (await (await fetch(`${url}/api/pods`)).json()) as ApiPods;
  return body.pods.map((p) => p.podId).sort();
}

async function rows(page: Page): Promise<string[]> {
  return (await page.locator('#pods-body tr[data-pod-id]').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-pod-id') ?? ''))).sort();
}

/** examples/client.ts as a browser module: TypeScript stripped, nothing else changed, exposed on window. */
function clientModuleSource(): string {
  const src = readFileSync('examples/client.ts', 'utf8');
  const js = ts.transpileModule(src, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext } }).outputText;
  return `${js}\nwindow.EdgeClient = EdgeClient;\n`;
}

test('status page in headless Chromium: live pods, live scale-out, browser test client, reference client as a browser module', async (tc) => {
  const config = loadConfig({ GATEWAY_PORT: '0', SOCKET_TARGET_CONNECTIONS: '10', SCALER_INTERVAL_MS: '300', HEARTBEAT_MS: '200', SCALE_IN_STABILIZATION_MS: '600000', DRAIN_WINDOW_MS: '500', LOG_LEVEL: 'silent' }, 'dev');
  const dev = await startDev(config, { logger: createLogger('silent'), host: '127.0.0.1', banner: () => {} });
  const clients: EdgeClient[] = [];
  let browser: StatusPage | undefined;
  try {
    browser = await openStatusPage(dev.url);
    const { page, pageErrors } = browser;
    assert.equal(await page.title(), 'rtc-edge status');

    // The two SOCKET_MIN_REPLICAS pods, exactly as the registry has them.
    const initial = await podIds(dev.url);
    assert.equal(initial.length, 2);
    await page.waitForFunction(() => document.querySelectorAll('#pods-body tr[data-pod-id]').length === 2, undefined, { timeout: UI_TIMEOUT_MS });
    assert.deepEqual(await rows(page), initial);
    await page.waitForFunction(() => document.getElementById('desired')?.textContent === '2', undefined, { timeout: UI_TIMEOUT_MS });
    assert.match((await page.locator('#conn-state').textContent()) ?? '', /^live · updated/);
    const firstRow = page.locator(`#pods-body tr[data-pod-id="${initial[0]}"] td`);
    assert.equal(await firstRow.nth(1).textContent(), (await fetch(`${dev.url}/api/pods`).then((r) => r.json()) as { pods: Array<{ podId: string; ip: string; port: number }> }).pods.filter((p) => p.podId === initial[0]).map((p) => `${p.ip}:${p.port}`)[0]);
    assert.equal(await firstRow.nth(3).textContent(), '0', 'no keys yet');
    assert.equal(await firstRow.nth(4).textContent(), 'serving');

    // Load from Node: 25 clients at 10 per pod → the scaler adds a pod and the page shows it without a reload.
    for (let i = 0; i < 25; i++) {
      const c = new EdgeClient({ url: dev.url, WebSocket: WebSocket });
      clients.push(c);
      c.start();
    }
    await page.waitForFunction((n) => document.querySelectorAll('#pods-body tr[data-pod-id]').length >= n, 3, { timeout: UI_TIMEOUT_MS });
    const afterScaleOut = await rows(page);
    const added = afterScaleOut.filter((id) => !initial.includes(id));
    assert.ok(added.length >= 1, `a new pod row appeared: ${afterScaleOut.join(', ')}`);
    await page.waitForFunction(() => document.getElementById('total')?.textContent === '25', undefined, { timeout: UI_TIMEOUT_MS });
    await page.waitForFunction(() => !!document.querySelector('#events li[data-kind="scale-out"]') && !!document.querySelector('#events li[data-kind="pod-added"]'), undefined, { timeout: UI_TIMEOUT_MS });
    assert.match((await page.locator('#events li[data-kind="scale-out"]').first().textContent()) ?? '', /scale out 2 → \d/);
    // /api/pods and /api/events are fetched side by side in one poll, so the scale-out event can be drawn one
    // poll before the desired count it caused: wait for the count, then check it.
    await page.waitForFunction(() => Number(document.getElementById('desired')?.textContent) >= 3, undefined, { timeout: UI_TIMEOUT_MS }).catch(() => {});
    const desired = Number(await page.locator('#desired').textContent());
    assert.ok(desired >= 3, `desired replicas shown: ${desired}`);

    // "Connect a test client": assign, pinned WebSocket from the browser, welcome shown.
    await page.click('#connect-btn');
    await page.waitForFunction(() => (document.getElementById('welcome')?.textContent ?? '').includes('"welcome"'), undefined, { timeout: UI_TIMEOUT_MS });
    const welcome = JSON.parse((await page.locator('#welcome').textContent()) ?? '{}') as { type: string; podId: string; sessionId: string };
    assert.equal(welcome.type, 'welcome');
    assert.ok((await podIds(dev.url)).includes(welcome.podId), `welcome from a live pod: ${welcome.podId}`);
    assert.ok(welcome.sessionId.length > 0);
    assert.match((await page.locator('#client-state').textContent()) ?? '', new RegExp(`^connected to ${welcome.podId}$`));
    await page.waitForFunction(() => document.getElementById('total')?.textContent === '26', undefined, { timeout: UI_TIMEOUT_MS });

    // The reference client itself runs in the browser with window.WebSocket and window.fetch.
    await page.addScriptTag({ type: 'module', content: clientModuleSource() });
    await page.waitForFunction(() => typeof (window as unknown as { EdgeClient?: unknown }).EdgeClient === 'function', undefined, { timeout: UI_TIMEOUT_MS });
    const browserWelcome = await page.evaluate(async (url) => {
      type C = { start(): void; stop(): void; once(e: string): Promise<{ podId: string; sessionId: string }> };
      const Ctor = (window as unknown as { EdgeClient: new (o: unknown) => C }).EdgeClient;
      const c = new Ctor({ url, WebSocket: window.WebSocket });
      const w = c.once('welcome');
      c.start();
      const result = await w;
      c.stop();
      return result;
    }, dev.url);
    assert.ok((await podIds(dev.url)).includes(browserWelcome.podId), `reference client in the browser got a welcome from ${browserWelcome.podId}`);

    // Load falls below what the pods hold: the scaler cordons the lightest pod at once (the scale-in itself waits
    // for SCALE_IN_STABILIZATION_MS); the page marks it as cordoned and as the planned victim.
    for (const c of clients.splice(0, 20)) c.stop();
    await page.waitForFunction(() => !!document.querySelector('#pods-body tr.cordoned .badge.victim') && !!document.querySelector('#events li[data-kind="cordon"]'), undefined, { timeout: UI_TIMEOUT_MS });
    const cordonedRow = page.locator('#pods-body tr.cordoned');
    assert.equal(await cordonedRow.count(), 1);
    assert.equal(await cordonedRow.locator('td').nth(4).textContent(), 'cordonedplanned victim');
    const api = (await (await fetch(`${dev.url}/api/pods`)).json()) as { pods: Array<{ podId: string; cordoned: boolean }>; victims: string[] };
    const cordonedId = await cordonedRow.getAttribute('data-pod-id');
    assert.deepEqual(api.pods.filter((p) => p.cordoned).map((p) => p.podId), [cordonedId]);
    assert.deepEqual(api.victims, [cordonedId]);
    assert.match((await page.locator('#events li[data-kind="cordon"]').first().textContent()) ?? '', new RegExp(`cordoned ${cordonedId} \\(\\d+ connections\\)`));
    assert.match((await page.locator('#pod-hint').textContent()) ?? '', /1 cordoned/);

    // Let the chart collect a few more samples, then keep the picture for people to look at.
    await page.waitForTimeout(2_000);
    mkdirSync('artifacts', { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    assert.ok(statSync(SCREENSHOT).size > 10_000, 'screenshot written');
    tc.diagnostic(`screenshot: ${SCREENSHOT}`);
    assert.deepEqual(pageErrors, []);
  } finally {
    for (const c of clients) c.stop();
    await browser?.close();
    await dev.close();
  }
});

test('status page in headless Chromium: keys per pod follow keyed clients, and a key lookup finds the owner', async () => {
  const config = loadConfig({ GATEWAY_PORT: '0', SOCKET_TARGET_CONNECTIONS: '100', SCALER_INTERVAL_MS: '300', HEARTBEAT_MS: '200', SOCKET_KEY_GRACE_MS: '200', LOG_LEVEL: 'silent' }, 'dev');
  const dev = await startDev(config, { logger: createLogger('silent'), host: '127.0.0.1', banner: () => {} });
  const clients: EdgeClient[] = [];
  let browser: StatusPage | undefined;
  const keysShown = (page: Page) => page.locator('#pods-body td.keys').evaluateAll((tds) => tds.reduce((n, td) => n + (Number(td.textContent) || 0), 0));
  try {
    browser = await openStatusPage(dev.url);
    const { page, pageErrors } = browser;
    await page.waitForFunction(() => document.querySelectorAll('#pods-body tr[data-pod-id]').length === 2, undefined, { timeout: UI_TIMEOUT_MS });

    // Three clients of room:1 and two of doc-7: two keys, each on one pod.
    for (const key of ['room:1', 'room:1', 'room:1', 'doc-7', 'doc-7']) {
      const c = new EdgeClient({ url: dev.url, WebSocket: WebSocket, key });
      clients.push(c);
      const w = c.once('welcome');
      c.start();
      await w;
    }
    await page.waitForFunction(() => document.getElementById('total')?.textContent === '5', undefined, { timeout: UI_TIMEOUT_MS });
    const deadline = Date.now() + UI_TIMEOUT_MS;
    while ((await keysShown(page)) !== 2 && Date.now() < deadline) await page.waitForTimeout(100);
    assert.equal(await keysShown(page), 2, 'two keys in the keys column');
    const api = (await (await fetch(`${dev.url}/api/pods`)).json()) as { pods: Array<{ podId: string; keyCount: number; keys: string[] }> };
    for (const p of api.pods) assert.equal(await page.locator(`#pods-body tr[data-pod-id="${p.podId}"] td.keys`).textContent(), String(p.keyCount), p.podId);
    const owner = (await (await fetch(`${dev.url}/api/keys/room:1`)).json()) as { podId: string };
    assert.ok(api.pods.find((p) => p.podId === owner.podId)?.keys.includes('room:1'), 'the owner lists the key');
    assert.match((await page.locator(`#pods-body tr[data-pod-id="${owner.podId}"] td.keys`).getAttribute('title')) ?? '', /room:1/);
    assert.match((await page.locator('#total-hint').textContent()) ?? '', /2 keys/);

    // Look the key up in the page: the owner is named and its row highlighted.
    await page.fill('#key-input', 'room:1');
    await page.click('#key-form button');
    await page.waitForFunction(() => document.getElementById('key-result')?.hasAttribute('data-owner') === true, undefined, { timeout: UI_TIMEOUT_MS });
    assert.equal(await page.locator('#key-result').getAttribute('data-owner'), owner.podId);
    assert.match((await page.locator('#key-result').textContent()) ?? '', new RegExp(`^room:1 → ${owner.podId} \\(serving, \\d+ connections, \\d+ keys\\)$`));
    assert.deepEqual(await page.locator('#pods-body tr.owner').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-pod-id'))), [owner.podId]);
    // The highlight survives the next poll's re-render.
    await page.waitForTimeout(1_500);
    assert.deepEqual(await page.locator('#pods-body tr.owner').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-pod-id'))), [owner.podId]);

    await page.fill('#key-input', 'room:404');
    await page.click('#key-form button');
    await page.waitForFunction(() => /^nobody owns room:404/.test(document.getElementById('key-result')?.textContent ?? ''), undefined, { timeout: UI_TIMEOUT_MS });
    assert.equal(await page.locator('#pods-body tr.owner').count(), 0, 'no highlight without an owner');
    await page.fill('#key-input', 'no spaces/slashes');
    await page.click('#key-form button');
    await page.waitForFunction(() => /^invalid_key: /.test(document.getElementById('key-result')?.textContent ?? ''), undefined, { timeout: UI_TIMEOUT_MS });

    // room:1's clients leave: after SOCKET_KEY_GRACE_MS its claim is released and the page counts one key.
    for (const c of clients.splice(0, 3)) c.stop();
    const gone = Date.now() + UI_TIMEOUT_MS;
    while ((await keysShown(page)) !== 1 && Date.now() < gone) await page.waitForTimeout(100);
    assert.equal(await keysShown(page), 1, 'the released key left the keys column');
    assert.deepEqual(pageErrors, []);
  } finally {
    for (const c of clients) c.stop();
    await browser?.close();
    await dev.close();
  }
});
