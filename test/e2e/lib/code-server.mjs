// Starts code-server (a real VS Code workbench + extension host) isolated in a temp folder, with
// this repository loaded as the extension under development, and a sample workspace.
// The recipe and its gotchas are in shared/E2E.md.
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const harnessDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const repoRoot = path.resolve(harnessDir, '..', '..');
const fixtures = path.join(repoRoot, 'test', 'fixtures');

/** The extension's id as webview iframes name it (`extensionId=<publisher>.<name>`). */
export const EXTENSION_ID = 'vision-inspector.vision-inspector';

/**
 * A workspace with the tiny fixture ViT, CLIP and Fuyu (random-like test weights: its labels mean nothing), real
 * photographs, a broken PNG, and workspace settings pointing at the model.
 */
export function makeWorkspace(root, { slowImage = false } = {}) {
  const ws = path.join(root, 'workspace');
  const model = path.join(ws, 'models', 'vit-photo-demo');
  mkdirSync(model, { recursive: true });
  for (const f of ['config.json', 'model.safetensors', 'preprocessor_config.json']) {
    copyFileSync(path.join(fixtures, 'golden', 'vit-photo', f), path.join(model, f));
  }
  writeFileSync(
    path.join(model, 'README.md'),
    '# Demo model — random test weights\n\nA 2-layer, 4-head ViT with a 32×32 input (8×8 patches of 4 px) from the test fixtures.\n' +
      'Its weights are seeded random, not trained: its labels and attention maps show how the tool works, not what a real model sees.\n',
  );
  // A model that takes images at their own size (no resize): non-square patch grids, interpolated position embeddings.
  const interp = path.join(ws, 'models', 'vit-interp-demo');
  mkdirSync(interp, { recursive: true });
  for (const f of ['config.json', 'model.safetensors', 'preprocessor_config.json']) {
    copyFileSync(path.join(fixtures, 'golden', 'vit-interp', f), path.join(interp, f));
  }
  // The tiny CLIP (random-like weights, with its tokenizer) for the CLIP and V* tabs.
  const clip = path.join(ws, 'models', 'clip-demo');
  mkdirSync(clip, { recursive: true });
  for (const f of ['config.json', 'model.safetensors', 'preprocessor_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.json', 'merges.txt']) {
    copyFileSync(path.join(fixtures, 'golden', 'clip-photo', f), path.join(clip, f));
  }
  // The tiny Fuyu (random-like weights, with its tokenizer) for the Fuyu view: its answers mean nothing.
  const fuyu = path.join(ws, 'models', 'fuyu-demo');
  mkdirSync(fuyu, { recursive: true });
  for (const f of ['config.json', 'generation_config.json', 'model.safetensors', 'preprocessor_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) {
    copyFileSync(path.join(fixtures, 'golden', 'fuyu-tiny', f), path.join(fuyu, f));
  }
  copyFileSync(path.join(fixtures, 'golden', 'fuyu-tiny', 'image60x90.png'), path.join(ws, 'fuyu60x90.png'));
  copyFileSync(path.join(fixtures, 'golden', 'vit-interp', 'rect48x40.png'), path.join(ws, 'rect48x40.png'));
  copyFileSync(path.join(fixtures, 'golden', 'vit-photo', 'chelsea.png'), path.join(ws, 'cat.png'));
  for (const f of ['coffee.jpg', 'astronaut.jpg', 'rocket.jpg']) copyFileSync(path.join(fixtures, 'photos', f), path.join(ws, f));
  // Content differs from every other image, or the result cache would answer before the delay.
  if (slowImage) copyFileSync(path.join(fixtures, 'photos', 'retina.jpg'), path.join(ws, 'slow-retina.jpg'));
  // A PNG signature followed by garbage: the decoder must refuse it with a clear message.
  writeFileSync(path.join(ws, 'broken.png'), Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from('this is not really an image')]));
  mkdirSync(path.join(ws, '.vscode'), { recursive: true });
  writeFileSync(path.join(ws, '.vscode', 'settings.json'), JSON.stringify({ 'visionInspector.model': 'models/vit-photo-demo', 'visionInspector.threads': 1 }, null, 2));
  return ws;
}

/** User settings for a quiet, deterministic workbench. */
function writeUserSettings(userDataDir, trust) {
  const dir = path.join(userDataDir, 'User');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    path.join(dir, 'settings.json'),
    JSON.stringify(
      {
        'workbench.startupEditor': 'none',
        // With trust on, opening a folder asks whether to trust it (for the Restricted Mode test).
        'security.workspace.trust.enabled': trust,
        'telemetry.telemetryLevel': 'off',
        'update.mode': 'none',
        'extensions.autoCheckUpdates': false,
        'extensions.autoUpdate': false,
        'workbench.tips.enabled': false,
        'workbench.enableExperiments': false,
        'chat.disableAIFeatures': true,
        'window.restoreWindows': 'none',
      },
      null,
      2,
    ),
  );
}

/**
 * Starts code-server on a free loopback port. Returns { url(folder), port, stop() }.
 * `trust`: turn workspace trust on (otherwise every folder is trusted).
 * `env` is added to the server's environment (the extension host inherits it).
 */
export async function startCodeServer({ root, env = {}, port = 0, trust = false, log = () => {} }) {
  const userDataDir = path.join(root, 'user-data');
  const extensionsDir = path.join(root, 'extensions');
  mkdirSync(extensionsDir, { recursive: true });
  writeUserSettings(userDataDir, trust);
  const config = path.join(root, 'config.yaml');
  writeFileSync(config, 'auth: none\ncert: false\n');
  const entry = path.join(harnessDir, 'node_modules', 'code-server', 'out', 'node', 'entry.js');
  const xdg = (name) => {
    const dir = path.join(root, name);
    mkdirSync(dir, { recursive: true });
    return dir;
  };
  const child = spawn(
    process.execPath,
    [
      entry,
      '--config', config,
      '--bind-addr', `127.0.0.1:${port}`,
      '--auth', 'none',
      '--user-data-dir', userDataDir,
      '--extensions-dir', extensionsDir,
      '--disable-telemetry',
      '--disable-update-check',
      ...(trust ? [] : ['--disable-workspace-trust']),
      '--disable-getting-started-override',
      '--ignore-last-opened',
    ],
    {
      detached: true, // its own process group, so stop() ends the extension host and friends too
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        XDG_CONFIG_HOME: xdg('xdg-config'),
        XDG_DATA_HOME: xdg('xdg-data'),
        XDG_CACHE_HOME: xdg('xdg-cache'),
        EXTENSIONS_GALLERY: '{}',
        ...env,
      },
    },
  );
  let output = '';
  const listening = new Promise((resolve, reject) => {
    const onData = (chunk) => {
      const text = chunk.toString();
      output += text;
      log(text);
      const m = /HTTP server listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(output);
      if (m) resolve(Number(m[1]));
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`code-server exited (${code}) before listening:\n${output}`)));
    setTimeout(() => reject(new Error(`code-server did not start within 90 s:\n${output}`)), 90_000).unref();
  });
  const actualPort = await listening;
  const extensionPath = repoRoot;
  return {
    port: actualPort,
    output: () => output,
    /** The workbench URL for a folder, with this repository as the extension under development. */
    url(folder) {
      const payload = JSON.stringify([['extensionDevelopmentPath', `vscode-remote://127.0.0.1:${actualPort}${extensionPath}`]]);
      return `http://127.0.0.1:${actualPort}/?folder=${encodeURIComponent(folder)}&payload=${encodeURIComponent(payload)}`;
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        return;
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }, 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export function makeTempRoot(prefix = 'vi-e2e-') {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}


