// Helpers that drive the workbench's explorer and palette and look inside the inspector webview.
// Every wait is on a condition, with a generous deadline: no fixed sleeps.
import { findFrame } from './workbench.mjs';

export const WAIT = 60_000;

/** Inside a webview: is this the inspector showing `name` in the given state? */
function inspectorIs([name, state]) {
  const app = document.querySelector('vi-inspector');
  if (!app) return false;
  if (state === 'drawn') {
    return (
      app.querySelector('.title strong')?.textContent === name &&
      app.querySelector('#heatmap')?.dataset.state === 'drawn' &&
      // The icons' font loaded under the webview's CSP (it starts loading once an icon shows).
      document.fonts.check('16px codicon')
    );
  }
  if (state === 'error') return app.querySelector('#error-view strong')?.textContent === name && !!app.querySelector('#error-message');
  if (state === 'status') return app.querySelector('#status-view strong')?.textContent === name;
  return false;
}

/** The frame of the inspector showing image `name`: 'drawn' (a heatmap), 'status' (running) or 'error'. */
export function inspectorFrame(page, name, state = 'drawn', timeout = WAIT) {
  return findFrame(page, inspectorIs, [name, state], { timeout, what: `the inspector of ${name} (${state})` });
}

/** Runs inside the webview: a hash of a canvas's pixels (default the heatmap), and how many are painted. */
function heatmapSignature(selector = '#heatmap') {
  const canvas = document.querySelector(selector);
  if (!canvas || canvas.width === 0 || canvas.height === 0) return { hash: '', painted: 0, state: canvas?.dataset.state };
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let hash = 2166136261;
  let painted = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] !== 0) painted++;
    hash = Math.imul(hash ^ (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)), 16777619);
  }
  return { hash: (hash >>> 0).toString(16), painted, token: canvas.dataset.token, state: canvas.dataset.state, redrawMs: Number(canvas.dataset.redrawMs) };
}

export function signature(frame, selector = '#heatmap') {
  return frame.evaluate(heatmapSignature, selector);
}

/** Waits until the canvas (default the heatmap) is drawn with pixels different from `previous`. */
export async function waitForNewHeatmap(page, frame, previous, what, selector = '#heatmap') {
  const deadline = Date.now() + WAIT;
  let current;
  while (Date.now() < deadline) {
    current = await signature(frame, selector);
    if (current.state === 'drawn' && current.hash !== previous.hash && current.painted > 0) return current;
    await page.waitForTimeout(100);
  }
  throw new Error(`${what}: the heatmap did not change (still ${JSON.stringify(current)})`);
}

/**
 * Gotcha 1: the explorer lists files before contributions are registered. The palette lists the
 * commands known when it opens, so reopen it until ours is there.
 */
export async function waitForOurCommand(page) {
  const input = page.locator('.quick-input-widget input.input');
  const entry = page.locator('.quick-input-list .monaco-list-row', { hasText: 'Vision Inspector: Inspect Image' }).first();
  await page.locator('.monaco-workbench').waitFor({ timeout: WAIT });
  const deadline = Date.now() + WAIT;
  for (;;) {
    await page.keyboard.press('F1');
    // Early on the workbench may not take keys yet: press again until the palette opens.
    const opened = await input.waitFor({ state: 'visible', timeout: 2000 }).then(() => true, () => false);
    let found = false;
    if (opened) {
      await input.fill('>Vision Inspector: Inspect Image');
      found = await entry.waitFor({ state: 'visible', timeout: 2000 }).then(() => true, () => false);
      await input.press('Escape');
    }
    if (found) return;
    if (Date.now() > deadline) throw new Error("the extension's commands never appeared in the command palette");
  }
}

export async function explorerRow(page, name) {
  const exact = new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
  const row = page.locator('.explorer-folders-view .monaco-list-row').filter({ has: page.locator('.label-name', { hasText: exact }) });
  await row.waitFor({ state: 'visible', timeout: WAIT });
  return row;
}

/** Right-clicks a file in the explorer and chooses a context-menu item. */
export async function contextMenu(page, name, item) {
  await (await explorerRow(page, name)).click({ button: 'right' });
  const entry = page.getByRole('menuitem', { name: item, exact: true });
  await entry.waitFor({ state: 'visible', timeout: WAIT });
  // The menu ignores a click that arrives while it is still settling in; it closes once an action runs.
  const deadline = Date.now() + WAIT;
  while (await entry.isVisible()) {
    if (Date.now() > deadline) throw new Error(`the context menu item "${item}" did not respond`);
    await entry.hover();
    await entry.click({ delay: 50, timeout: 5000 }).catch(() => undefined);
    await entry.waitFor({ state: 'hidden', timeout: 2000 }).catch(() => undefined);
  }
}
