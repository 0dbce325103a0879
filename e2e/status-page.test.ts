import { existsSync } from 'node:fs';
import path from 'node:path';
import { generateIdentity, HiveClient } from '@hive/sdk';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type AgentProc, operator, spawnAgent, startHub, type TestHub } from './helpers.js';

/** Debian's chromium (`.ci/run` installs it); playwright-core drives it, no browser download. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`status-page browser tests skipped: no chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);

/** The row of satellite `slug` in the fleet table. */
const rowOf = (page: Page, slug: string) => page.locator('#fleet tbody tr', { has: page.locator('strong', { hasText: slug }) });

describe.skipIf(!haveChromium)("the hub's first screen in a real browser (Debian chromium)", () => {
  let browser: Browser;
  let hub: TestHub;
  const agents: AgentProc[] = [];
  const clients: HiveClient[] = [];

  beforeAll(async () => {
    // --no-sandbox: CI runs as root, where chromium's sandbox refuses to start.
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
    hub = await startHub();
  });
  afterEach(async () => {
    await Promise.all(agents.splice(0).map((a) => a.kill()));
    for (const c of clients.splice(0)) await c.close();
  });
  afterAll(async () => {
    await browser?.close();
    await hub?.close();
  });

  it('opened with the console link, it lists the local agent online and follows it live: offline when it stops, online when it is back', async () => {
    const op = await operator(hub);
    const state = path.join(hub.dataDir, 'agent-first');
    const agent = spawnAgent(hub.wsUrl, state, ['--name', 'first-screen']);
    agents.push(agent);
    const sat = await op.waitEvent('satellite:online', (p) => p.slug === 'first-screen');

    const page = await browser.newPage();
    // The link `npm start` prints: the key travels in the fragment (never sent to the server) and
    // is dropped from the address bar once read.
    await page.goto(`${hub.url}/#key=${hub.adminKey}`);
    const row = rowOf(page, 'first-screen');
    await expect.poll(() => row.getAttribute('class'), { timeout: 15_000 }).toBe('online');
    await expect.poll(() => page.locator('#conn').textContent(), { timeout: 15_000 }).toBe('live');
    expect(page.url()).not.toContain(hub.adminKey);
    expect(await row.locator('td').nth(1).textContent()).toContain('online');

    // No reload from here on: the page follows the hub's events over its WebSocket.
    await agent.kill();
    await op.waitEvent('satellite:offline', (p) => p.id === sat.id);
    await expect.poll(() => row.getAttribute('class'), { timeout: 15_000 }).toBe('offline');

    const again = spawnAgent(hub.wsUrl, state, ['--name', 'first-screen']);
    agents.push(again);
    await expect.poll(() => row.getAttribute('class'), { timeout: 20_000 }).toBe('online');
    // Still one row for the machine: the agent came back as the same satellite.
    expect(await rowOf(page, 'first-screen').count()).toBe(1);
    await page.close();
    await op.close();
  });

  it('a wrong key gets the key form and no fleet; markup in what a satellite reports is shown as text, never run', async () => {
    const page = await browser.newPage();
    await page.goto(`${hub.url}/#key=hive_not_a_real_key_0000000000000000000000`);
    await expect.poll(() => page.locator('#login').isVisible(), { timeout: 15_000 }).toBe(true);
    expect(await page.locator('#fleet').isHidden()).toBe(true);

    // A node reporting a hostile host name (what a compromised or odd machine could send).
    const hostile = '<img src=x onerror="window.__pwned=1">';
    const node = new HiveClient({
      url: hub.wsUrl,
      role: 'node',
      identity: generateIdentity(),
      client: { name: 'hive-test', version: '0', platform: 'linux', arch: 'x64', hostname: hostile, displayName: 'markup-host' },
      reconnect: false,
    });
    clients.push(node);
    const op = await operator(hub);
    await node.start();
    await op.waitEvent('satellite:online', (p) => p.slug === 'markup-host');

    // The right key, typed into the form.
    await page.locator('#key').fill(hub.adminKey);
    await page.locator('#login button').click();
    const row = rowOf(page, 'markup-host');
    await expect.poll(() => row.getAttribute('class'), { timeout: 15_000 }).toBe('online');
    expect(await row.locator('td').nth(2).textContent()).toBe(hostile);
    expect(await row.locator('img').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as { __pwned?: number }).__pwned)).toBeUndefined();
    await page.close();
    await op.close();
  });
});
