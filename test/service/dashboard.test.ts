/**
 * The dashboard in a real browser: Debian's chromium driven by playwright-core. Sign in with an API
 * key, submit a job through the API, watch it appear and finish on the page, open it and see its
 * plot; submit a file from the page itself. Skipped where chromium is not installed, unless
 * REQUIRE_BROWSER=1 (`.ci/run` installs it and requires it).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers.js';
import { type Harness, KMEANS, ROWS, start, stop } from './harness.js';

const CHROMIUM = '/usr/bin/chromium';
const available = existsSync(CHROMIUM);
const required = process.env.REQUIRE_BROWSER === '1';

let h: Harness | undefined;
let url: string;
let key: string;
let browser: Browser | undefined;

beforeAll(async () => {
  if (!available) return;
  h = await start();
  key = h.key;
  url = await h.service.app.listen({ host: '127.0.0.1', port: 0 });
  // Root in CI has no user namespace for chromium's sandbox.
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  if (h) await stop(h);
});

describe.runIf(available || required)('the dashboard', () => {
  it('signs in, shows a job submitted through the API appear and finish, and its plot', async () => {
    expect(available, `${CHROMIUM} is required (REQUIRE_BROWSER=1)`).toBe(true);
    const page = await browser!.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await page.goto(`${url}/dashboard`);
    await page.fill(
      'input[name="apiKey"]',
      'nck_0000000000000000_not-a-key-not-a-key-not-a-key-not-a-key-xx',
    );
    await page.click('#signin button[type="submit"]');
    await expect.poll(() => page.textContent('#signin-error')).toMatch(/NEUROCLUSTER_ERR_UNAUTHORIZED/);
    errors.length = 0; // the 401 above is logged by the browser as a failed request
    await page.fill('input[name="apiKey"]', key);
    await page.click('#signin button[type="submit"]');
    await page.waitForSelector('#app:not([hidden])');

    const response = await fetch(`${url}/v1/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        data: ROWS,
        options: KMEANS,
      }),
    });
    const { id } = (await response.json()) as { id: string };
    const row = page.locator(`tr[data-id="${id}"]`);
    await row.waitFor({ timeout: 20_000 });
    await page.waitForSelector(`tr[data-id="${id}"][data-state="succeeded"]`, { timeout: 30_000 });
    await expect.poll(() => row.locator('td').nth(3).textContent()).toBe('kmeans');
    await expect.poll(() => page.textContent('#counts')).toMatch(/succeeded 1/);
    await expect.poll(() => page.textContent('#fallback-rate')).toMatch(/of the last 1 jobs/);
    expect(await page.textContent('#workers')).toMatch(/^1 worker thread\(s\) in the service, [01] busy$/);

    await row.click();
    await page.waitForSelector('#detail-plot:not([hidden])');
    const plot = await page.$eval('#detail-plot', (img) => {
      const shown = img as unknown as { src: string; naturalWidth: number };
      return { src: shown.src, width: shown.naturalWidth };
    });
    expect(plot.src).toMatch(/^blob:/);
    expect(plot.width).toBeGreaterThan(100);

    // A file submitted from the page.
    await page.setInputFiles('input[name="file"]', join(ROOT, 'examples/iris.csv'));
    await page.selectOption('select[name="method"]', 'kmeans');
    await page.click('#submit-form button[type="submit"]');
    await expect.poll(() => page.textContent('#submit-result')).toMatch(/^accepted: /);
    const second = (await page.textContent('#submit-result'))!.replace('accepted: ', '');
    await page.waitForSelector(`tr[data-id="${second}"][data-state="succeeded"]`, { timeout: 30_000 });
    expect(errors).toEqual([]);
    await page.close();
  }, 90_000);
});
