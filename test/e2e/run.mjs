// End-to-end test in a real VS Code (code-server 4.100.3) driven by headless Chromium:
// right-click an image → Inspect Image → heatmap; hover and click patches; switch layer, head
// and mode; the Attention Explorer; the palette path; Open With…; Cancel; a broken image;
// Select Model… → Download from Hugging Face… against a local mock hub (cancel once, then again).
// Screenshots of every step go to test/e2e/out/screenshots. Usage: npm run test:e2e
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { installHarness } from './install.mjs';
import { harnessDir, makeTempRoot, makeWorkspace, repoRoot, startCodeServer } from './lib/code-server.mjs';
import { MOCK_REPO_ID, startMockHub } from './lib/hub.mjs';
import * as ui from './lib/inspector.mjs';
import { findFrame, isolateWebviewOrigins, launchBrowser, runCommand } from './lib/workbench.mjs';

const { WAIT } = ui;
const started = Date.now();
const shots = path.join(harnessDir, 'out', 'screenshots');
const results = [];
const figures = [];
let hostTests = { passing: 0, failing: 0 };
const cspViolations = [];

installHarness();
console.log('e2e: building the extension');
execFileSync('npm', ['run', 'build', '--silent'], { cwd: repoRoot, stdio: 'inherit' });
rmSync(shots, { recursive: true, force: true });
mkdirSync(shots, { recursive: true });

const root = makeTempRoot();
const workspace = makeWorkspace(root, { slowImage: true });
// Images to compare with and average over: a folder stands for the images directly inside it.
const morePhotos = path.join(workspace, 'more-photos');
mkdirSync(morePhotos);
for (const f of ['coffee.jpg', 'astronaut.jpg', 'rocket.jpg']) copyFileSync(path.join(workspace, f), path.join(morePhotos, f));
// The inspector's image pickers, skipped: visionInspector.chooseImages takes the paths as its
// argument, which a keybinding passes (the palette cannot). The user data folder is code-server's.
const CHOOSE_KEYS = {
  matrix: { key: 'ctrl+alt+shift+f7', args: { purpose: 'clipMatrix', paths: ['coffee.jpg', 'astronaut.jpg', 'rocket.jpg'].map((f) => path.join(workspace, f)) } },
  distance: { key: 'ctrl+alt+shift+f8', args: { purpose: 'attentionDistance', paths: [morePhotos] } },
  slowDistance: { key: 'ctrl+alt+shift+f9', args: { purpose: 'attentionDistance', paths: [path.join(workspace, 'slow-retina.jpg')] } },
};
mkdirSync(path.join(root, 'user-data', 'User'), { recursive: true });
writeFileSync(path.join(root, 'user-data', 'User', 'keybindings.json'), JSON.stringify(Object.values(CHOOSE_KEYS).map(({ key, args }) => ({ key, command: 'visionInspector.chooseImages', args })), null, 2));
let server;
let hub;
let browser;
let page;
let shotIndex = 0;

async function shot(name) {
  const file = path.join(shots, `${String(++shotIndex).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file });
  return file;
}

async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push({ name, ok: true, ms: Date.now() - t0 });
    console.log(`  ✔ ${name} (${Date.now() - t0} ms)`);
  } catch (err) {
    results.push({ name, ok: false, ms: Date.now() - t0, error: err });
    console.log(`  ✘ ${name}\n    ${String(err?.stack ?? err).split('\n').slice(0, 6).join('\n    ')}`);
    await shot(`FAILED-${name.replace(/\W+/g, '-')}`).catch(() => undefined);
    throw err;
  }
}

// The current page's versions of the shared helpers (the Restricted Mode step opens a new page).
const inspectorFrame = (name, state, timeout) => ui.inspectorFrame(page, name, state, timeout);
const signature = (frame) => ui.signature(frame);
const waitForNewHeatmap = (frame, previous, what, selector) => ui.waitForNewHeatmap(page, frame, previous, what, selector);
const waitForOurCommand = () => ui.waitForOurCommand(page);
const explorerRow = (name) => ui.explorerRow(page, name);
const contextMenu = (name, item) => ui.contextMenu(page, name, item);

async function showExplorer() {
  await runCommand(page, 'View: Show Explorer');
  await page.locator('.explorer-folders-view').waitFor({ state: 'visible', timeout: WAIT });
}

async function closeAllEditors() {
  await runCommand(page, 'View: Close All Editors');
  await page.locator('.editor-group-container .tabs-container .tab').first().waitFor({ state: 'detached', timeout: WAIT });
}

/**
 * Waits until no notification toast contains `text` (there may be two for a moment: a finished
 * run's fading out beside the next one's, which a single-element locator refuses).
 */
async function noToast(text) {
  await page.waitForFunction(
    (t) => ![...document.querySelectorAll('.notifications-toasts .notification-toast')].some((e) => e.textContent.includes(t)),
    text, { timeout: WAIT });
}

/** Opens a vscode-single-select and clicks one of its options. */
async function chooseOption(frame, selector, label) {
  await frame.locator(selector).click();
  const option = frame.locator(selector).getByRole('option', { name: label, exact: true });
  await option.waitFor({ state: 'visible', timeout: WAIT });
  await option.click();
}

/**
 * Runs visionInspector.chooseImages for the active inspector through its keybinding (CHOOSE_KEYS),
 * with the workbench focused on the inspector's editor tab, so the keys reach the keybinding service.
 */
async function chooseImagesByKey(which, tabTitle) {
  await page.locator('.editor-group-container .tab', { hasText: tabTitle }).first().click();
  await page.keyboard.press(CHOOSE_KEYS[which].key.split('+').map((k) => ({ ctrl: 'Control', alt: 'Alt', shift: 'Shift' })[k] ?? k.toUpperCase()).join('+'));
}

/** Saves a decoded <img> of the webview (e.g. an SVG plot) as a PNG in the screenshots. */
async function saveImage(frame, selector, name) {
  const png = await frame.evaluate((sel) => {
    const img = document.querySelector(sel);
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const ctx = canvas.getContext('2d');
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(img, 0, 0);
    return canvas.toDataURL('image/png').split(',')[1];
  }, selector);
  writeFileSync(path.join(shots, `${String(++shotIndex).padStart(2, '0')}-${name}.png`), Buffer.from(png, 'base64'));
}

/** Clicks at a fraction (fx, fy) of an element inside a frame. */
async function clickAt(frame, selector, fx, fy, options = {}) {
  const box = await frame.locator(selector).boundingBox();
  if (!box) throw new Error(`${selector} has no box`);
  const x = box.x + box.width * fx;
  const y = box.y + box.height * fy;
  if (options.hoverOnly) await page.mouse.move(x, y, { steps: 4 });
  else await page.mouse.click(x, y);
}

/**
 * Bundles test/e2e/host and runs it in a fresh window's extension host (payload
 * `extensionTestsPath`); the workbench reports the runner's exit code through codeAutomationExit.
 */
async function runHostTests() {
  const esbuild = createRequire(path.join(repoRoot, 'package.json'))('esbuild');
  // .cjs: test/e2e/package.json says "type": "module", and the extension host require()s this file.
  const bundle = path.join(harnessDir, 'out', 'host-tests.cjs');
  await esbuild.build({
    entryPoints: [path.join(harnessDir, 'host', 'index.ts')],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    outfile: bundle,
    external: ['vscode', 'mocha', 'onnxruntime-node', 'sharp'],
    logLevel: 'warning',
  });
  const hostWorkspace = makeWorkspace(path.join(root, 'host-tests'));
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const hostPage = await context.newPage();
  await isolateWebviewOrigins(hostPage, server.port);
  hostPage.on('console', (message) => {
    if (process.env.E2E_VERBOSE) console.log(`    [host window] ${message.text()}`);
  });
  const report = path.join(harnessDir, 'out', 'host-tests-report.json');
  rmSync(report, { force: true });
  const exit = new Promise((resolve) => hostPage.exposeFunction('codeAutomationExit', (code) => resolve(code)));
  const payload = JSON.stringify([
    ['extensionDevelopmentPath', `vscode-remote://127.0.0.1:${server.port}${repoRoot}`],
    ['extensionTestsPath', `vscode-remote://127.0.0.1:${server.port}${bundle}`],
  ]);
  await hostPage.goto(`http://127.0.0.1:${server.port}/?folder=${encodeURIComponent(hostWorkspace)}&payload=${encodeURIComponent(payload)}`);
  const code = await Promise.race([exit, new Promise((_, reject) => setTimeout(() => reject(new Error('extension-host tests did not finish within 180 s')), 180_000))]);
  await context.close();
  if (!existsSync(report)) throw new Error(`the extension-host tests wrote no report (exit code ${code})`);
  const { passing, failing, lines } = JSON.parse(readFileSync(report, 'utf8'));
  for (const line of lines) console.log(`    ${line}`);
  return { code, passing, failing };
}

// ---- the scenario ----

try {
  hub = await startMockHub(root);
  console.log(`e2e: mock Hugging Face Hub on ${hub.mock.endpoint}; starting code-server`);
  server = await startCodeServer({ root, env: { VISION_INSPECTOR_E2E_DELAY_MS: '600000', ...hub.env } });
  browser = await launchBrowser();
  const context = await browser.newContext({ viewport: { width: 1600, height: 1000 } });
  page = await context.newPage();
  page.on('pageerror', (err) => console.log(`    [page error] ${err.message}`));
  // Our webviews' CSP carries a per-page nonce; the workbench's own is 'nonce-1nline-m4p'.
  page.on('console', (message) => {
    const text = message.text();
    if (/Content Security Policy/.test(text) && !text.includes('1nline-m4p')) cspViolations.push(text);
  });
  await isolateWebviewOrigins(page, server.port);
  console.log(`e2e: code-server on port ${server.port}; running the scenario`);

  await step('the workbench opens the workspace and registers the extension', async () => {
    await page.goto(server.url(workspace));
    await page.locator('.monaco-workbench').waitFor({ timeout: WAIT });
    await explorerRow('cat.png');
    await waitForOurCommand();
    await shot('workbench');
  });

  let inspector;
  let before;
  await step('right-click cat.png → Inspect Image shows a heatmap, labels and thumbnails', async () => {
    const t0 = Date.now();
    await contextMenu('cat.png', 'Inspect Image');
    inspector = await inspectorFrame('cat.png');
    figures.push(`figure: e2e.first_heatmap_cold = ${Date.now() - t0} ms`);
    before = await signature(inspector);
    if (before.painted === 0) throw new Error('the heatmap is empty');
    const labels = await inspector.locator('#top-labels li').count();
    if (labels !== 5) throw new Error(`expected 5 labels, saw ${labels}`);
    await inspector.locator('#thumbnails canvas').waitFor({ timeout: WAIT });
    const thumbWidth = await inspector.locator('#thumbnails canvas').evaluate((c) => c.width);
    if (!(thumbWidth > 50)) throw new Error(`thumbnail grid not drawn (canvas width ${thumbWidth})`);
    await shot('inspect-cat');
  });

  await step('hovering a patch shows its token index and redraws its attention', async () => {
    await clickAt(inspector, '#grid-overlay', 0.3, 0.4, { hoverOnly: true });
    await inspector.locator('#hover-info', { hasText: /token \d+ · patch row \d+, col \d+/ }).waitFor({ timeout: WAIT });
    const hovered = await waitForNewHeatmap(inspector, before, 'hover');
    if (hovered.token === '0') throw new Error('the hovered token is still [CLS]');
    figures.push(`figure: e2e.hover_redraw_65_tokens = ${hovered.redrawMs.toFixed(2)} ms`);
    await shot('hover-patch');
    before = hovered;
  });

  await step('clicking a patch pins it', async () => {
    await clickAt(inspector, '#grid-overlay', 0.7, 0.6);
    await inspector.locator('#reset-token').waitFor({ timeout: WAIT });
    await page.mouse.move(5, 500); // leave the image: the pinned patch stays shown
    const pinned = await waitForNewHeatmap(inspector, before, 'pin');
    const info = await inspector.locator('.pinned').textContent();
    if (!/token \d+ \(pinned\)/.test(info)) throw new Error(`pinned label: ${info}`);
    await shot('pinned-patch');
    before = pinned;
  });

  await step('choosing another layer and head changes the heatmap', async () => {
    // Layer 0 through the dropdown, as a user would.
    await chooseOption(inspector, '#layer-select', '0');
    const layer0 = await waitForNewHeatmap(inspector, before, 'layer 0');
    // Head 2 of layer 1 from the thumbnail grid: columns are mean, 0, 1, 2, 3.
    const box = await inspector.locator('#thumbnails canvas').boundingBox();
    const layout = await inspector.locator('#thumbnails canvas').evaluate((c) => ({ width: parseFloat(c.style.width), height: parseFloat(c.style.height) }));
    const tile = { x: 30 + ((layout.width - 30) / 5) * 3.5, y: 16 + ((layout.height - 16) / 2) * 1.5 };
    await page.mouse.click(box.x + tile.x, box.y + tile.y);
    const head = await waitForNewHeatmap(inspector, layer0, 'head 2 of layer 1');
    const text = await inspector.locator('#hover-info').textContent();
    if (!text.includes('layer 1, head 2')) throw new Error(`expected layer 1, head 2; the view says: ${text}`);
    await shot('layer-head');
    before = head;
  });

  await step('attention rollout draws a different map', async () => {
    await chooseOption(inspector, '#mode-select', 'Attention rollout');
    const rollout = await waitForNewHeatmap(inspector, before, 'rollout');
    const text = await inspector.locator('#hover-info').textContent();
    if (!text.includes('rollout through layer')) throw new Error(`rollout label: ${text}`);
    await shot('rollout');
    await chooseOption(inspector, '#mode-select', 'Attention');
    before = await waitForNewHeatmap(inspector, rollout, 'back to attention');
  });

  await step('the Attention Explorer follows the inspector and drives it', async () => {
    await page.locator('.part.activitybar [aria-label^="Vision Inspector"]').first().click();
    const explorer = await findFrame(page, () => !!document.querySelector('#explorer-grid')?.shadowRoot?.querySelector('canvas') && document.querySelector('vi-explorer strong')?.textContent === 'cat.png', undefined, {
      timeout: WAIT,
      what: 'the Attention Explorer showing cat.png',
    });
    const canvas = explorer.locator('#explorer-grid canvas');
    const box = await canvas.boundingBox();
    const size = await canvas.evaluate((c) => ({ width: parseFloat(c.style.width), height: parseFloat(c.style.height) }));
    // Layer 0, head 0.
    await page.mouse.click(box.x + 30 + ((size.width - 30) / 5) * 1.5, box.y + 16 + ((size.height - 16) / 2) * 0.5);
    await inspector.locator('#hover-info', { hasText: 'layer 0, head 0' }).waitFor({ timeout: WAIT });
    await waitForNewHeatmap(inspector, before, 'explorer selection');
    await explorer.locator('#explorer-selection', { hasText: 'layer 0, head 0' }).waitFor({ timeout: WAIT });
    await shot('attention-explorer');
  });

  await step('the palette command inspects the image in the active tab', async () => {
    await showExplorer();
    await closeAllEditors();
    await (await explorerRow('coffee.jpg')).dblclick();
    await page.locator('.editor-group-container .tab', { hasText: 'coffee.jpg' }).waitFor({ timeout: WAIT });
    const t0 = Date.now();
    await runCommand(page, 'Vision Inspector: Inspect Image');
    await inspectorFrame('coffee.jpg');
    figures.push(`figure: e2e.heatmap_new_image_warm = ${Date.now() - t0} ms`);
    await shot('palette-coffee');
  });

  await step("the image preview's title-bar button inspects the image", async () => {
    await closeAllEditors();
    await (await explorerRow('rocket.jpg')).dblclick();
    await page.locator('.editor-group-container .tab', { hasText: 'rocket.jpg' }).waitFor({ timeout: WAIT });
    const button = page.locator('.editor-actions [aria-label="Inspect Image"]').first();
    await button.waitFor({ timeout: WAIT });
    await button.click();
    await inspectorFrame('rocket.jpg');
    await shot('editor-title-rocket');
  });

  await step('Open With… → Vision Inspector opens the custom editor', async () => {
    await closeAllEditors();
    await contextMenu('astronaut.jpg', 'Open With...');
    const pick = page.locator('.quick-input-list .monaco-list-row', { hasText: 'Vision Inspector' }).first();
    await pick.waitFor({ timeout: WAIT });
    await pick.click();
    await inspectorFrame('astronaut.jpg');
    await page.locator('.editor-group-container .tab', { hasText: 'astronaut.jpg' }).waitFor({ timeout: WAIT });
    await shot('custom-editor');
  });

  await step('Cancel in the progress notification stops a long run', async () => {
    await closeAllEditors();
    await contextMenu('slow-retina.jpg', 'Inspect Image');
    await inspectorFrame('slow-retina.jpg', 'status');
    const toast = page.locator('.notifications-toasts .notification-toast', { hasText: 'slow-retina.jpg' });
    await toast.waitFor({ timeout: WAIT });
    await shot('long-run');
    await toast.getByRole('button', { name: 'Cancel' }).click();
    const frame = await inspectorFrame('slow-retina.jpg', 'error');
    const message = await frame.locator('#error-message').textContent();
    if (message !== 'Cancelled.') throw new Error(`expected "Cancelled.", got ${message}`);
    await toast.waitFor({ state: 'detached', timeout: WAIT });
    await shot('cancelled');
  });

  await step('a broken image shows an error in the panel', async () => {
    await closeAllEditors();
    await contextMenu('broken.png', 'Inspect Image');
    const frame = await inspectorFrame('broken.png', 'error');
    const message = await frame.locator('#error-message').textContent();
    if (!message.includes('broken.png')) throw new Error(`the error does not name the file: ${message}`);
    await frame.locator('vscode-button[data-action="retry"]').waitFor();
    await shot('broken-image');
  });

  await step('reopening cat.png is served from the result cache', async () => {
    await closeAllEditors();
    const t0 = Date.now();
    await contextMenu('cat.png', 'Inspect Image');
    const frame = await inspectorFrame('cat.png');
    figures.push(`figure: e2e.heatmap_reopen_cached = ${Date.now() - t0} ms`);
    const timing = await frame.locator('#timing').textContent();
    if (!timing.startsWith('cached')) throw new Error(`expected a cached result, timing says: ${timing}`);
  });

  /** Clicks an export button, accepts the suggested path in the save dialog, waits for the file. */
  const exportFile = async (button, prefix, ext) => {
    const frame = await inspectorFrame('cat.png');
    await frame.locator(button).click();
    // code-server's save dialog is the simple quick-input dialog, prefilled with the suggested path.
    const input = page.locator('.quick-input-widget input.input');
    await input.waitFor({ state: 'visible', timeout: WAIT });
    await page.waitForFunction((e) => document.querySelector('.quick-input-widget input.input')?.value.endsWith(e), ext, { timeout: WAIT });
    await input.press('Enter');
    const deadline = Date.now() + WAIT;
    for (;;) {
      const file = readdirSync(workspace).find((f) => f.startsWith(prefix) && f.endsWith(ext));
      if (file && statSync(path.join(workspace, file)).size > 0) return path.join(workspace, file);
      if (Date.now() > deadline) throw new Error(`no exported ${ext} appeared in the workspace`);
      await page.waitForTimeout(200);
    }
  };

  await step('Export JSON writes the numbers next to the image', async () => {
    const file = await exportFile('#export-json', 'cat-attn-', '.json');
    const json = JSON.parse(readFileSync(file, 'utf8'));
    if (json.map.length !== 8 || json.map[0].length !== 8) throw new Error(`expected an 8×8 map, got ${json.map.length}×${json.map[0]?.length}`);
    await shot('exported-json');
  });

  await step('Export PNG writes the map over the image', async () => {
    const file = await exportFile('#export-png', 'cat-attn-', '.png');
    const header = readFileSync(file).subarray(0, 24);
    if (header.readUInt32BE(0) !== 0x89504e47) throw new Error('not a PNG');
    const [width, height] = [header.readUInt32BE(16), header.readUInt32BE(20)];
    if (width !== 451 || height !== 300) throw new Error(`expected the image's 451×300, got ${width}×${height}`);
  });


  /** Select Model… → Download from Hugging Face… → the mock hub's repo id, typed. */
  /** Opens Select Model… and waits for its model list: it replaces the first items once found, so an earlier click can land on another row. */
  const openModelPicker = async () => {
    await runCommand(page, 'Vision Inspector: Select Model…');
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'vit-photo-demo' }).waitFor({ timeout: WAIT });
    const download = page.locator('.quick-input-list .monaco-list-row', { hasText: 'Download from Hugging Face…' });
    await download.waitFor({ timeout: WAIT });
    return download;
  };
  const startHubDownload = async (repoId = MOCK_REPO_ID) => {
    const download = await openModelPicker();
    await download.click();
    const input = page.locator('.quick-input-widget input.input');
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'google/vit-base-patch16-224' }).waitFor({ timeout: WAIT });
    await input.fill(repoId);
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'download this model' }).waitFor({ timeout: WAIT });
    await input.press('Enter');
    return page.locator('.notifications-toasts .notification-toast', { hasText: `downloading ${repoId}` });
  };
  const snapshotWeights = () => {
    const snapshots = path.join(hub.cacheDir, `models--${MOCK_REPO_ID.replace('/', '--')}`, 'snapshots');
    return existsSync(snapshots) ? readdirSync(snapshots).map((c) => path.join(snapshots, c, 'model.safetensors')).filter((f) => existsSync(f)) : [];
  };

  await step('Download from Hugging Face…: the picker lists known checkpoints, refuses a bad id, and Cancel stops a download', async () => {
    await closeAllEditors();
    const download = await openModelPicker();
    await shot('select-model-download-entry');
    await download.click();
    const input = page.locator('.quick-input-widget input.input');
    for (const id of ['google/vit-base-patch16-224', 'openai/clip-vit-base-patch32', 'openai/clip-vit-large-patch14', 'adept/fuyu-8b']) {
      await page.locator('.quick-input-list .monaco-list-row', { hasText: id }).waitFor({ timeout: WAIT });
    }
    await shot('hub-known-checkpoints');
    await input.fill('not a model id');
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Not a Hugging Face model id' }).waitFor({ timeout: WAIT });
    await input.press('Enter'); // refused: the picker stays open
    await shot('hub-invalid-id');
    await input.waitFor({ state: 'visible', timeout: WAIT });
    await input.press('Escape');
    await input.waitFor({ state: 'hidden', timeout: WAIT });

    hub.slowWeights();
    const toast = await startHubDownload();
    await toast.waitFor({ timeout: WAIT });
    // The size the server reported, and bytes arriving.
    await toast.locator('.notification-list-item-message', { hasText: /[1-9][\d.]* kB of [\d.]+ kB/ }).waitFor({ timeout: WAIT });
    await shot('hub-download-progress');
    await toast.getByRole('button', { name: 'Cancel' }).click();
    await toast.waitFor({ state: 'detached', timeout: WAIT });
    const errors = await page.locator('.notifications-toasts .notification-toast', { hasText: 'could not download' }).count();
    if (errors > 0) throw new Error('Cancel showed an error');
    if (snapshotWeights().length > 0) throw new Error('a cancelled download left weights in a snapshot');
    if (!(await page.locator('.statusbar-item', { hasText: 'vit-photo-demo' }).isVisible())) throw new Error('Cancel changed the selected model');
    await shot('hub-download-cancelled');
  });

  await step('downloading again completes into the HF cache and selects the model', async () => {
    hub.normalSpeed();
    const rangeBefore = hub.mock.requests.filter((r) => r.server === 'cdn' && r.headers.range).length;
    await startHubDownload();
    await page.locator('.statusbar-item', { hasText: MOCK_REPO_ID }).waitFor({ timeout: WAIT });
    if (snapshotWeights().length !== 1) throw new Error(`expected the weights in one snapshot, found ${snapshotWeights().length}`);
    const resumed = hub.mock.requests.filter((r) => r.server === 'cdn' && r.headers.range).length > rangeBefore;
    figures.push(`figure: e2e.hub_download_resumed_after_cancel = ${resumed}`);
    await page.locator('.notifications-toasts .notification-toast', { hasText: `downloading ${MOCK_REPO_ID}` }).waitFor({ state: 'detached', timeout: WAIT });
    await shot('hub-downloaded');
  });

  await step('a model the Hub does not have gives a clear error, and the selection stays', async () => {
    await startHubDownload('tiny-org/no-such-model');
    // Once it has faded in, so the screenshot shows it.
    const error = page.locator('.notifications-toasts .notification-toast.notification-fade-in-done', { hasText: 'could not download tiny-org/no-such-model' });
    await error.waitFor({ timeout: WAIT });
    await page.locator('.notifications-toasts .notification-toast', { hasText: 'downloading tiny-org/no-such-model' }).waitFor({ state: 'detached', timeout: WAIT });
    await page.locator('.statusbar-item', { hasText: MOCK_REPO_ID }).waitFor({ timeout: WAIT });
    // Expanded, so the screenshot shows the whole message.
    await error.hover();
    await error.locator('.codicon-notifications-expand').click();
    const text = await error.locator('.notification-list-item-message').textContent();
    console.log(`    the error says: ${text}`);
    await shot('hub-download-error');
    await error.locator('.codicon-notifications-clear').click();
    await error.waitFor({ state: 'detached', timeout: WAIT });
  });

  await step('an image inspected with the downloaded model shows a heatmap', async () => {
    // An image not inspected before, so the model really runs rather than the result cache answering.
    await contextMenu('rect48x40.png', 'Inspect Image');
    const frame = await inspectorFrame('rect48x40.png');
    const drawn = await signature(frame);
    if (drawn.painted === 0) throw new Error('the heatmap is empty');
    const timing = await frame.locator('#timing').textContent();
    if (timing.startsWith('cached')) throw new Error(`expected a fresh run, timing says: ${timing}`);
    const title = await frame.locator('.title').textContent();
    if (!title.includes('8×8 patches') || !title.includes(MOCK_REPO_ID)) throw new Error(`expected the downloaded fixture ViT (8×8 grid) by its hub id: ${title}`);
    await shot('inspect-downloaded-model');
  });

  await step('a model without resizing gives a non-square, interpolated patch grid', async () => {
    await closeAllEditors();
    writeFileSync(path.join(workspace, '.vscode', 'settings.json'), JSON.stringify({ 'visionInspector.model': 'models/vit-interp-demo', 'visionInspector.threads': 1 }));
    await page.locator('.statusbar-item', { hasText: 'vit-interp-demo' }).waitFor({ timeout: WAIT });
    await contextMenu('rect48x40.png', 'Inspect Image');
    const frame = await inspectorFrame('rect48x40.png');
    const title = await frame.locator('.title').textContent();
    if (!title.includes('10×12 patches')) throw new Error(`expected a 10×12 grid (40×48 px in 4-px patches): ${title}`);
    // Patch centres, away from the edges: column 8.5 of 10, row 1.5 of 12.
    await clickAt(frame, '#grid-overlay', 0.85, 0.125, { hoverOnly: true });
    await frame.locator('#hover-info', { hasText: 'patch row 1, col 8' }).waitFor({ timeout: WAIT });
    await shot('non-square-grid');
  });

  let clipFrame;
  await step('with a CLIP model the inspector shows the vision tower\'s attention and a CLIP tab', async () => {
    await closeAllEditors();
    writeFileSync(path.join(workspace, '.vscode', 'settings.json'), JSON.stringify({ 'visionInspector.model': 'models/clip-demo', 'visionInspector.threads': 1 }));
    await page.locator('.statusbar-item', { hasText: 'clip-demo' }).waitFor({ timeout: WAIT });
    await contextMenu('cat.png', 'Inspect Image');
    clipFrame = await inspectorFrame('cat.png');
    const title = await clipFrame.locator('.title').textContent();
    if (!title.includes('8×8 patches')) throw new Error(`expected the tiny CLIP's 8×8 grid: ${title}`);
    for (const tab of ['#tab-attention', '#tab-clip', '#tab-conv', '#tab-search']) await clipFrame.locator(tab).waitFor({ timeout: WAIT });
    await shot('clip-attention');
  });

  await step('CLIP tab: a label over the host\'s limit is refused with a message, and the tab stays usable', async () => {
    await clipFrame.locator('#tab-clip').click();
    await clipFrame.locator('#clip-labels').fill(`a cat\n${'x'.repeat(301)}`);
    await clipFrame.locator('#clip-classify').click();
    await clipFrame.locator('#clip-error', { hasText: 'at most 300 characters' }).waitFor({ timeout: WAIT });
    if (await clipFrame.locator('#clip-classify').isDisabled()) throw new Error('the tab stayed busy');
  });

  await step('CLIP tab: typed labels give zero-shot probability bars', async () => {
    await clipFrame.locator('#clip-labels').fill('a cat\na dog\na red car');
    await clipFrame.locator('#clip-classify').click();
    await clipFrame.locator('#clip-bars li').nth(2).waitFor({ timeout: WAIT });
    const rows = await clipFrame.locator('#clip-bars li .label').allTextContents();
    if (rows.join('|') !== 'a cat|a dog|a red car') throw new Error(`bars: ${rows.join('|')}`);
    const total = (await clipFrame.locator('#clip-bars li .prob').allTextContents()).reduce((sum, t) => sum + parseFloat(t), 0);
    if (Math.abs(total - 100) > 0.5) throw new Error(`probabilities sum to ${total} %`);
    await shot('clip-zero-shot');
  });

  await step('CLIP tab: a phrase draws a heatmap, another phrase changes it', async () => {
    await clipFrame.locator('#clip-phrase').fill('a cat');
    await clipFrame.locator('#clip-show').click();
    const first = await waitForNewHeatmap(clipFrame, { hash: '' }, 'phrase "a cat"', '#clip-heatmap');
    await clipFrame.locator('#clip-phrase').fill('a red car');
    await clipFrame.locator('#clip-show').click();
    await waitForNewHeatmap(clipFrame, first, 'phrase "a red car"', '#clip-heatmap');
    await clipFrame.locator('#phrase-info', { hasText: 'a red car' }).waitFor({ timeout: WAIT });
    await shot('clip-phrase-heatmap');
  });

  await step('CLIP tab: Compare with images… gives the image × text matrix, with per-row probabilities', async () => {
    await clipFrame.locator('#clip-compare').waitFor({ timeout: WAIT });
    await chooseImagesByKey('matrix', 'Inspect cat.png');
    await clipFrame.locator('#clip-matrix tr').nth(4).waitFor({ timeout: WAIT });
    const heads = await clipFrame.locator('#clip-matrix tr').first().locator('th').allTextContents();
    if (heads.slice(1).join('|') !== 'a cat|a dog|a red car') throw new Error(`columns: ${heads.join('|')}`);
    const rows = (await clipFrame.locator('#clip-matrix .row-head span').allTextContents()).join('|');
    if (rows !== 'cat.png|coffee.jpg|astronaut.jpg|rocket.jpg') throw new Error(`rows: ${rows}`);
    const cosines = (await clipFrame.locator('#clip-matrix td').allTextContents()).map(Number);
    if (cosines.length !== 12 || cosines.some((c) => !(Math.abs(c) <= 100))) throw new Error(`100·cos cells: ${cosines.join(', ')}`);
    // The thumbnails arrived from the host and were drawn.
    const thumbs = await clipFrame.evaluate(() => [...document.querySelectorAll('#clip-matrix canvas.thumb')].map((c) => c.width));
    if (thumbs.length !== 3 || thumbs.some((w) => w === 0)) throw new Error(`thumbnails: ${thumbs}`);
    await clipFrame.locator('#clip-matrix-method', { hasText: 'logits_per_image' }).waitFor({ timeout: WAIT });
    await clipFrame.locator('#clip-matrix').scrollIntoViewIfNeeded();
    await shot('clip-matrix-cosine');
    await clipFrame.locator('#clip-matrix-probs').click();
    await clipFrame.locator('#clip-matrix-info', { hasText: 'softmax' }).waitFor({ timeout: WAIT });
    const cells = (await clipFrame.locator('#clip-matrix td').allTextContents()).map((t) => parseFloat(t));
    for (let r = 0; r < 4; r++) {
      const sum = cells.slice(r * 3, r * 3 + 3).reduce((a, b) => a + b, 0);
      if (Math.abs(sum - 100) > 0.5) throw new Error(`row ${r} probabilities sum to ${sum} %`);
    }
    // Row 0 is the zero-shot classification of the inspected image.
    const bars = (await clipFrame.locator('#clip-bars li .prob').allTextContents()).map((t) => parseFloat(t));
    if (bars.some((b, i) => Math.abs(b - cells[i]) > 0.05)) throw new Error(`row 0 ${cells.slice(0, 3)} differs from the zero-shot bars ${bars}`);
    await shot('clip-matrix-probabilities');
  });

  await step('CLIP tab: the text tower\'s attention for a label, per layer and head', async () => {
    await clipFrame.locator('#clip-text-select').selectOption('a red car');
    await clipFrame.locator('#clip-text-attention').click();
    const mean = await waitForNewHeatmap(clipFrame, { hash: '' }, 'text attention, mean of heads', '#clip-text-matrix');
    await clipFrame.locator('#clip-text-info', { hasText: '"a photo of a red car."' }).waitFor({ timeout: WAIT }); // the label in the template
    const bars = await clipFrame.locator('#clip-eos-bars li').count();
    if (bars < 3) throw new Error(`expected the end-of-text token's attention to every token, got ${bars} bars`);
    const total = (await clipFrame.locator('#clip-eos-bars li .prob').allTextContents()).reduce((sum, t) => sum + parseFloat(t), 0);
    if (Math.abs(total - 100) > 0.5) throw new Error(`the end-of-text row sums to ${total} %`);
    await clipFrame.locator('#clip-text-head').selectOption('2');
    const head = await waitForNewHeatmap(clipFrame, mean, 'text attention, head 2', '#clip-text-matrix');
    // The view starts at layer 0; the tiny CLIP's text tower has layers 0 and 1.
    await clipFrame.locator('#clip-text-layer').selectOption('1');
    await waitForNewHeatmap(clipFrame, head, 'text attention, layer 1 head 2', '#clip-text-matrix');
    await clipFrame.locator('#clip-text-method', { hasText: 'Layer 1, head 2' }).waitFor({ timeout: WAIT });
    await clipFrame.locator('#clip-text-matrix').scrollIntoViewIfNeeded();
    await shot('clip-text-attention');
  });

  await step('Convolution tab: Sobel x, then convolution ↔ cross-correlation changes the pixels', async () => {
    await clipFrame.locator('#tab-conv').click();
    await clipFrame.locator('#kernel-select').selectOption('sobel-x');
    const conv = await waitForNewHeatmap(clipFrame, { hash: '' }, 'Sobel x (convolution)', '#conv-output');
    await clipFrame.locator('#correlation-toggle').click();
    await clipFrame.locator('#conv-caption', { hasText: 'correlation' }).waitFor({ timeout: WAIT });
    const corr = await waitForNewHeatmap(clipFrame, conv, 'Sobel x (cross-correlation)', '#conv-output');
    if (corr.painted === 0) throw new Error('the output is empty');
    // The learned filters of the loaded model arrive from the host.
    await clipFrame.locator('#filter-tiles').waitFor({ timeout: WAIT });
    const response = await waitForNewHeatmap(clipFrame, { hash: '' }, 'learned filter response', '#filter-response');
    await clipFrame.locator('#filter-next').click();
    await waitForNewHeatmap(clipFrame, response, 'next learned filter', '#filter-response');
    await shot('convolution');
  });

  await step('ViT paper tab: position similarities and filter components, redrawn for another grid', async () => {
    await clipFrame.locator('#tab-paper').click();
    const positions = await waitForNewHeatmap(clipFrame, { hash: '' }, 'position similarity', '#position-similarity');
    await waitForNewHeatmap(clipFrame, { hash: '' }, 'filter components', '#filter-components');
    for (const card of ['#positions-method', '#pca-method']) await clipFrame.locator(card).waitFor({ timeout: WAIT });
    await shot('vit-paper');
    await clipFrame.locator('#pca-method').scrollIntoViewIfNeeded();
    await shot('vit-paper-components');
    await clipFrame.locator('#paper-grid-select').scrollIntoViewIfNeeded();
    // The last choice is a resized grid (double the trained one).
    const choice = await clipFrame.locator('#paper-grid-select option').last().getAttribute('value');
    await clipFrame.locator('#paper-grid-select').selectOption(choice);
    await clipFrame.locator('#position-caption', { hasText: 'resized from the trained' }).waitFor({ timeout: WAIT });
    await waitForNewHeatmap(clipFrame, positions, `position similarity on a ${choice} grid`, '#position-similarity');
    if ((await signature(clipFrame, '#filter-components')).painted === 0) throw new Error('the filter components are gone');
    await shot('vit-paper-resized');
    // The report's SVG plot, loaded as an image (it fails to load if it is not a well-formed SVG document).
    await clipFrame.waitForFunction(() => document.querySelector('#attention-distance')?.naturalWidth > 0, undefined, { timeout: WAIT });
    await clipFrame.locator('#distance-method', { hasText: 'excluded as a query and as a key' }).waitFor({ timeout: WAIT });
    // The figure as the webview decoded it (the workbench's screenshot shows only the top of this long tab).
    await saveImage(clipFrame, '#attention-distance', 'vit-paper-attention-distance');
  });

  await step('ViT paper tab: mean attention distance over a chosen folder, and Cancel stops a run', async () => {
    await clipFrame.locator('#distance-choose').waitFor({ timeout: WAIT });
    await chooseImagesByKey('distance', 'Inspect cat.png');
    await clipFrame.waitForFunction(() => document.querySelector('#attention-distance-set')?.naturalWidth > 0, undefined, { timeout: WAIT });
    const caption = await clipFrame.locator('#distance-set-caption').textContent();
    if (!/averaged over 3 images \(astronaut\.jpg, coffee\.jpg, rocket\.jpg\)/.test(caption)) throw new Error(`caption: ${caption}`);
    await clipFrame.locator('#distance-set-method', { hasText: 'Averaged over 3 images' }).waitFor({ timeout: WAIT });
    await clipFrame.locator('#distance-set-method', { hasText: 'excluded as a query and as a key' }).waitFor({ timeout: WAIT });
    // A different average than the single image's plot.
    const [one, three] = await clipFrame.evaluate(() => ['#attention-distance', '#attention-distance-set'].map((s) => document.querySelector(s).src));
    if (one === three) throw new Error('the plot over the folder is the single image\'s');
    await clipFrame.locator('#distance-set-method').scrollIntoViewIfNeeded();
    await shot('vit-paper-distance-over-folder');
    await saveImage(clipFrame, '#attention-distance-set', 'vit-paper-distance-over-folder-plot');
    await noToast('mean attention distance');
    // A slowed image (the e2e delay hook): the run shows its progress until Cancel.
    await chooseImagesByKey('slowDistance', 'Inspect cat.png');
    await clipFrame.locator('#distance-progress', { hasText: '0 of 1 images' }).waitFor({ timeout: WAIT });
    await clipFrame.locator('#distance-cancel').scrollIntoViewIfNeeded();
    await shot('vit-paper-distance-running');
    await clipFrame.locator('#distance-cancel').click();
    await clipFrame.locator('#distance-set-note', { hasText: 'Cancelled.' }).waitFor({ timeout: WAIT });
    await noToast('mean attention distance');
    // The finished average stays shown.
    if ((await clipFrame.locator('#distance-set-caption').textContent()) !== caption) throw new Error('the cancelled run replaced the finished plot');
  });

  await step('V* search tab: a search on a photo replays step by step', async () => {
    // The tiny Fuyu in visionInspector.models answers the next step's question. Written here so
    // that VS Code has reloaded the settings by then (this step's search takes seconds).
    writeFileSync(path.join(workspace, '.vscode', 'settings.json'), JSON.stringify({ 'visionInspector.model': 'models/clip-demo', 'visionInspector.models': ['models/fuyu-demo'], 'visionInspector.threads': 1 }));
    await clipFrame.locator('#tab-search').click();
    await clipFrame.locator('#search-targets').fill('cat');
    await clipFrame.locator('#search-run').click();
    await clipFrame.locator('#step-label').waitFor({ timeout: WAIT });
    const label = await clipFrame.locator('#step-label').textContent();
    const steps = Number(/of (\d+)/.exec(label)?.[1]);
    if (!(steps >= 2)) throw new Error(`expected at least two recorded steps: ${label}`);
    await waitForNewHeatmap(clipFrame, { hash: '' }, 'search step 1', '#search-canvas');
    const box0 = await clipFrame.locator('#search-canvas').getAttribute('data-box');
    await shot('vstar-step-1');
    await clipFrame.locator('#step-next').click();
    await clipFrame.locator('#step-label', { hasText: 'step 2 of' }).waitFor({ timeout: WAIT });
    const box1 = await clipFrame.locator('#search-canvas').getAttribute('data-box');
    if (box1 === box0) throw new Error(`stepping did not move the box (${box0})`);
    if ((await clipFrame.locator('#search-queue li').count()) === 0 && !(await clipFrame.locator('#step-why').textContent()).includes('too-small')) throw new Error('no queue shown');
    await shot('vstar-step-2');
    // The search's progress notification (with its Cancel) closes once the search is done.
    await noToast('V* search');
    // Without a question, the final crops are answered by their CLIP scores.
    await clipFrame.locator('#search-final #search-answer-text', { hasText: 'cat:' }).waitFor({ timeout: WAIT });
  });

  await step('V* search tab: a question → Fuyu names the targets, the final crops sit beside its answer', async () => {
    // The tiny Fuyu (random weights: the wiring is checked, not the answer).
    await clipFrame.locator('#search-question').fill('What colour is the cat?');
    if ((await clipFrame.locator('#search-targets').inputValue()) !== 'cat') throw new Error('the question did not fill the target list with its noun phrase');
    await clipFrame.locator('#search-ask-targets').waitFor({ timeout: WAIT });
    await clipFrame.locator('#search-run').click();
    await clipFrame.locator('#search-answer-note', { hasText: 'fuyu-demo' }).waitFor({ timeout: WAIT });
    const answer = await clipFrame.locator('#search-answer').textContent();
    if (!answer.includes('fuyu-demo answers:')) throw new Error(`no Fuyu answer beside the crops: ${answer}`);
    if ((await clipFrame.locator('#search-proposal').count()) !== 1 || (await clipFrame.locator('#search-answer-prompt').count()) !== 1) throw new Error('the prompts Fuyu got are not shown');
    const crops = await clipFrame.locator('#search-crops figure').count();
    if (crops < 1) throw new Error('no final crop (or "not found" card) shown');
    const painted = await clipFrame.locator('#search-crops canvas.crop').evaluateAll((canvases) => canvases.filter((c) => c.width > 0 && c.height > 0).length);
    if (painted !== (await clipFrame.locator('#search-crops canvas.crop').count())) throw new Error('a final crop canvas was not drawn');
    await clipFrame.locator('#search-answer-prompt summary').click();
    await clipFrame.locator('#search-final').scrollIntoViewIfNeeded();
    await shot('vstar-final-crops-answer');
    await noToast('V* search');
  });

  let fuyuFrame;
  await step('with a Fuyu model the inspector shows the Fuyu view, its weights and memory estimate before loading', async () => {
    await closeAllEditors();
    writeFileSync(path.join(workspace, '.vscode', 'settings.json'), JSON.stringify({ 'visionInspector.model': 'models/fuyu-demo', 'visionInspector.threads': 1 }));
    await page.locator('.statusbar-item', { hasText: 'fuyu-demo' }).waitFor({ timeout: WAIT });
    await contextMenu('fuyu60x90.png', 'Inspect Image');
    fuyuFrame = await findFrame(page, (name) => document.querySelector('vi-fuyu-view') !== null && document.querySelector('.title strong')?.textContent === name && document.querySelector('#fuyu-layout')?.dataset.state === 'drawn',
      'fuyu60x90.png', { timeout: WAIT, what: 'the Fuyu view of fuyu60x90.png' });
    const memory = await fuyuFrame.locator('#fuyu-memory').textContent();
    if (!/Estimated memory with fp32: [\d.]+ kB/.test(memory)) throw new Error(`expected an fp32 memory estimate: ${memory}`);
    await shot('fuyu-before-generate');
  });

  await step('Fuyu: the VQA preset, Generate → the answer streams in, token chips follow the layout', async () => {
    await fuyuFrame.locator('#fuyu-preset-vqa').click();
    if ((await fuyuFrame.locator('#fuyu-prompt').inputValue()) !== 'What is in this image?\n') throw new Error('the VQA preset did not fill the prompt');
    await fuyuFrame.locator('#fuyu-max-tokens').fill('6');
    await fuyuFrame.locator('#fuyu-max-tokens').dispatchEvent('change');
    await fuyuFrame.locator('#fuyu-generate').click();
    await fuyuFrame.locator('#fuyu-progress', { hasText: 'stopped by' }).waitFor({ timeout: WAIT });
    const answer = (await fuyuFrame.locator('#fuyu-answer').textContent()).trim();
    if (!answer || answer === '—') throw new Error('no answer text');
    const generated = await fuyuFrame.locator('#fuyu-tokens .token.generated').count();
    if (generated < 1 || generated > 6) throw new Error(`expected 1…6 generated tokens, got ${generated}`);
    if ((await fuyuFrame.locator('#fuyu-tokens .token.beginning-of-answer').count()) !== 1) throw new Error('no beginning-of-answer token in the layout');
    await shot('fuyu-answer');
  });

  await step('Fuyu: choosing another token and another layer changes the attention map', async () => {
    const first = await waitForNewHeatmap(fuyuFrame, { hash: '' }, 'beginning-of-answer attention', '#fuyu-heatmap');
    await fuyuFrame.locator('#fuyu-tokens .token.generated').first().click();
    const second = await waitForNewHeatmap(fuyuFrame, first, 'first generated token attention', '#fuyu-heatmap');
    await fuyuFrame.locator('#fuyu-layer').selectOption('0');
    await waitForNewHeatmap(fuyuFrame, second, 'layer 0', '#fuyu-heatmap');
    await fuyuFrame.locator('#fuyu-map-info', { hasText: 'layer 0' }).waitFor({ timeout: WAIT });
    await shot('fuyu-token-attention');
    // The generation's progress notification (with its Cancel) closes once generation is done.
    await page.locator('.notifications-toasts .notification-toast', { hasText: 'Fuyu on' }).waitFor({ state: 'detached', timeout: WAIT });
  });

  await step('the webviews ran without a single CSP violation', async () => {
    if (cspViolations.length > 0) throw new Error(`${cspViolations.length} CSP violation(s), e.g.: ${cspViolations[0].slice(0, 300)}`);
  });

  await step('extension-host tests (mocha inside code-server) pass', async () => {
    await page.context().close();
    const summary = await runHostTests();
    hostTests = summary;
    if (summary.failing > 0 || summary.passing === 0) throw new Error(`extension-host tests: ${summary.passing} passing, ${summary.failing} failing (exit code ${summary.code})`);
  });
  await step('in Restricted Mode, the workspace\'s model is not loaded and the panel says why', async () => {
    await server.stop();
    const restrictedRoot = path.join(root, 'restricted');
    const restrictedWorkspace = makeWorkspace(restrictedRoot);
    server = await startCodeServer({ root: restrictedRoot, trust: true });
    const context = await browser.newContext({ viewport: { width: 1600, height: 1000 } });
    page = await context.newPage();
    await isolateWebviewOrigins(page, server.port);
    await page.goto(server.url(restrictedWorkspace));
    const distrust = page.getByRole('button', { name: /No, I don.t trust the authors/ });
    await distrust.waitFor({ timeout: WAIT });
    await distrust.click();
    await explorerRow('cat.png');
    await waitForOurCommand();
    await contextMenu('cat.png', 'Inspect Image');
    const frame = await inspectorFrame('cat.png', 'error');
    const message = await frame.locator('#error-message').textContent();
    if (!/not trusted/.test(message) || !/Restricted Mode/.test(message)) throw new Error(`the panel does not say why: ${message}`);
    await frame.locator('vscode-button[data-action="manageTrust"]').waitFor();
    await shot('restricted-mode');
  });
} catch {
  // Reported per step above.
} finally {
  await browser?.close().catch(() => undefined);
  await server?.stop().catch(() => undefined);
  await hub?.close().catch(() => undefined);
  if (results.some((r) => !r.ok) && server) console.log(`e2e: code-server output (tail):\n${server.output().split('\n').slice(-40).join('\n')}`);
  if (!process.env.KEEP_E2E_TMP) rmSync(root, { recursive: true, force: true });
}

// Each UI step counts once; the extension-host step counts as its own tests.
const uiSteps = results.filter((r) => !r.name.startsWith('extension-host'));
const passed = uiSteps.filter((r) => r.ok).length + hostTests.passing;
const failed = uiSteps.length - uiSteps.filter((r) => r.ok).length + hostTests.failing + (results.some((r) => r.name.startsWith('extension-host') && !r.ok) && hostTests.failing === 0 ? 1 : 0);
for (const f of figures) console.log(f);
console.log(`e2e: screenshots in ${path.relative(repoRoot, shots)} (${existsSync(shots) ? readdirSync(shots).length : 0} files); ${((Date.now() - started) / 1000).toFixed(1)} s in all`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
