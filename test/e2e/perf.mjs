// Interactive figures in a real VS Code, on real-size random-weight models (not run in CI):
// time from "Inspect Image" to the first heatmap (cold, then warm) with ViT-B/16, and the hover
// redraw time on ViT-L/14@336 (577 tokens, 24 layers × 16 heads), for attention and rollout.
// Prints `figure: …` lines. Usage: node test/e2e/perf.mjs
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { installHarness } from './install.mjs';
import { makeTempRoot, makeWorkspace, repoRoot, startCodeServer } from './lib/code-server.mjs';
import * as ui from './lib/inspector.mjs';
import { isolateWebviewOrigins, launchBrowser, runCommand } from './lib/workbench.mjs';

installHarness();
execFileSync('npm', ['run', 'build', '--silent'], { cwd: repoRoot, stdio: 'inherit' });
const root = makeTempRoot('vi-perf-');
const workspace = makeWorkspace(root);
const models = path.join(workspace, 'models');
console.log('perf: writing random ViT-B/16 and ViT-L/14@336 checkpoints');
execFileSync(process.execPath, ['--import', 'tsx', path.join('test', 'e2e', 'perf-models.ts'), models], { cwd: repoRoot, stdio: 'inherit' });
const settings = path.join(workspace, '.vscode', 'settings.json');
const useModel = (name) => writeFileSync(settings, JSON.stringify({ 'visionInspector.model': `models/${name}` }, null, 2));
useModel('vit-b16-random');

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const figures = [];
const figure = (name, value, unit) => {
  const line = `figure: inspector.${name} = ${value} ${unit}`;
  figures.push(line);
  console.log(line);
};

const server = await startCodeServer({ root });
const browser = await launchBrowser();
try {
  const page = await (await browser.newContext({ viewport: { width: 1600, height: 1000 } })).newPage();
  await isolateWebviewOrigins(page, server.port);
  await page.goto(server.url(workspace));
  await ui.waitForOurCommand(page);

  const timeToHeatmap = async (image) => {
    await runCommand(page, 'View: Close All Editors');
    const t0 = Date.now();
    await ui.contextMenu(page, image, 'Inspect Image');
    const frame = await ui.inspectorFrame(page, image, 'drawn', 300_000);
    return { ms: Date.now() - t0, frame };
  };
  figure('vit_b16.first_heatmap_cold', (await timeToHeatmap('cat.png')).ms, 'ms');
  figure('vit_b16.first_heatmap_warm', (await timeToHeatmap('coffee.jpg')).ms, 'ms');

  useModel('vit-l14-336-random');
  await page.locator('.statusbar-item', { hasText: 'vit-l14-336-random' }).waitFor({ timeout: ui.WAIT });
  const large = await timeToHeatmap('astronaut.jpg');
  figure('vit_l14_336.first_heatmap_cold', large.ms, 'ms');

  /** Hovers `count` different patches; returns the redraw times the page measured. */
  const hoverTimes = async (frame, count) => {
    const box = await frame.locator('#grid-overlay').boundingBox();
    const times = [];
    let previous = await ui.signature(frame);
    for (let i = 0; i < count; i++) {
      // A diagonal walk: every step lands on a different patch of the 24×24 grid.
      const f = (i + 0.5) / count;
      await page.mouse.move(box.x + box.width * f, box.y + box.height * (1 - f));
      const deadline = Date.now() + ui.WAIT;
      let current;
      for (;;) {
        current = await ui.signature(frame);
        if (current.state === 'drawn' && current.token !== previous.token && current.token !== '0') break;
        if (Date.now() > deadline) throw new Error(`hover ${i}: no redraw (${JSON.stringify(current)})`);
        await page.waitForTimeout(20);
      }
      // The first hover in a layer also fetches that layer ([16, 577, 577] floats); later ones do not.
      if (i > 0) times.push(current.redrawMs);
      previous = current;
    }
    return times;
  };
  const attention = await hoverTimes(large.frame, 21);
  figure('vit_l14_336.hover_redraw_attention_median', median(attention).toFixed(2), 'ms');
  figure('vit_l14_336.hover_redraw_attention_max', Math.max(...attention).toFixed(2), 'ms');

  await large.frame.locator('#mode-select').click();
  await large.frame.locator('#mode-select').getByRole('option', { name: 'Attention rollout', exact: true }).click();
  const t0 = Date.now();
  await large.frame.locator('#hover-info', { hasText: /rollout through layer 23$/ }).waitFor({ timeout: 300_000 });
  figure('vit_l14_336.rollout_first_map', Date.now() - t0, 'ms');
  const rollout = await hoverTimes(large.frame, 21);
  figure('vit_l14_336.hover_redraw_rollout_median', median(rollout).toFixed(2), 'ms');
  figure('vit_l14_336.hover_redraw_rollout_max', Math.max(...rollout).toFixed(2), 'ms');
  await page.screenshot({ path: path.join(repoRoot, 'test', 'e2e', 'out', 'perf-vit-l14-336.png') });
} finally {
  await browser.close().catch(() => undefined);
  await server.stop().catch(() => undefined);
  rmSync(root, { recursive: true, force: true });
}
