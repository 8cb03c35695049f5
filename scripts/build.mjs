// Bundles the extension host, the inference worker, the CLI and the webviews with esbuild.
// Native modules (onnxruntime-node, sharp) stay external: they load their prebuilt binaries at run time.
import { cp, mkdir } from 'node:fs/promises';
import * as esbuild from 'esbuild';

const production = process.argv.includes('--production');
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: !production,
  minify: production,
  external: ['vscode', 'onnxruntime-node', 'sharp'],
  logLevel: 'warning',
};

// One ES module per webview (loaded with <script type="module" nonce=…>); lit and
// @vscode-elements/elements are bundled in, so the webview loads nothing else but codicons.
const webview = {
  bundle: true,
  platform: 'browser',
  target: 'es2022',
  format: 'esm',
  sourcemap: !production,
  minify: production,
  logLevel: 'warning',
  tsconfig: 'webview/tsconfig.json',
  outdir: 'out/webview',
  entryPoints: { inspector: 'webview/inspector/main.ts', explorer: 'webview/explorer/main.ts' },
};

await mkdir('out/webview/codicons', { recursive: true });
await Promise.all([
  esbuild.build({ ...common, entryPoints: { extension: 'src/host/extension.ts' }, outdir: 'out' }),
  esbuild.build({ ...common, entryPoints: { worker: 'src/core/engine/worker.ts' }, outdir: 'out' }),
  esbuild.build({ ...common, entryPoints: { cli: 'src/cli/main.ts' }, outdir: 'out', banner: { js: '#!/usr/bin/env node' } }),
  esbuild.build(webview),
  cp('media/webview.css', 'out/webview/webview.css'),
  cp('node_modules/@vscode/codicons/dist/codicon.css', 'out/webview/codicons/codicon.css'),
  cp('node_modules/@vscode/codicons/dist/codicon.ttf', 'out/webview/codicons/codicon.ttf'),
]);
