// Driving the VS Code workbench in Chromium with playwright-core: launching, giving each webview
// its own origin (shared/E2E.md gotcha 2), and finding our webviews' frames.
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { harnessDir } from './code-server.mjs';

// Required when first used: the harness installs playwright-core after this module is imported.
const requireFromHarness = createRequire(path.join(harnessDir, 'package.json'));

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

export async function launchBrowser() {
  const { chromium } = requireFromHarness('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
      // A routed page otherwise has its websocket to 127.0.0.1 blocked (gotcha 2).
      '--disable-features=LocalNetworkAccessChecks',
    ],
  });
}

/**
 * Serves every webview from its own origin, http://<uuid>.localhost:<port>: with one shared origin
 * (and service-worker scope) a second webview opened right after a first can stay blank.
 */
export async function isolateWebviewOrigins(page, port) {
  await page.route(
    (url) => url.port === String(port) && url.hostname === '127.0.0.1' && url.pathname === '/',
    async (route) => {
      const response = await route.fetch();
      const headers = { ...response.headers() };
      let body = await response.text();
      body = body.replace(/(&quot;webviewEndpoint&quot;:&quot;)([^&]*)(&quot;)/, (_, open, value, close) => {
        const absolute = new URL(value, route.request().url()).pathname;
        return `${open}http://{{uuid}}.localhost:${port}${absolute}${close}`;
      });
      const csp = headers['content-security-policy'];
      if (csp) headers['content-security-policy'] = csp.replace("frame-src 'self'", `frame-src 'self' http://*.localhost:${port}`);
      await route.fulfill({ response, body, headers });
    },
  );
}

/**
 * The first frame (of any webview) for which `predicate(arg)` is true inside it. Webview content
 * lives two iframes deep (the workbench's `iframe.webview`, then its `#active-frame`); checking
 * every frame finds it whatever the nesting.
 */
export async function findFrame(page, predicate, arg, { timeout = 60_000, what = 'frame' } = {}) {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    for (const frame of page.frames()) {
      if (frame === page.mainFrame()) continue;
      try {
        if (await frame.evaluate(predicate, arg)) return frame;
      } catch {
        // detached or navigating frame: try the others, then again
      }
    }
    await page.waitForTimeout(50);
  }
  throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
}

/** Runs a command by its palette title (F1, type, Enter). */
export async function runCommand(page, title) {
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input.input');
  await input.waitFor({ state: 'visible' });
  await input.fill(`>${title}`);
  const row = page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first();
  await row.waitFor({ state: 'visible', timeout: 30_000 });
  await input.press('Enter');
}
