// Bundles the extension host, the inference worker and the CLI with esbuild.
// Native modules (onnxruntime-node, sharp) stay external: they load their prebuilt binaries at run time.
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

await Promise.all([
  esbuild.build({ ...common, entryPoints: { extension: 'src/host/extension.ts' }, outdir: 'out' }),
  esbuild.build({ ...common, entryPoints: { worker: 'src/core/engine/worker.ts' }, outdir: 'out' }),
  esbuild.build({ ...common, entryPoints: { cli: 'src/cli/main.ts' }, outdir: 'out', banner: { js: '#!/usr/bin/env node' } }),
]);
