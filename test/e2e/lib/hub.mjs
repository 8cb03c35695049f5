// The unit tests' mock Hugging Face Hub (test/unit/io/hub-mock.ts: the real URL scheme, CDN
// redirects, ETag / X-Repo-Commit / X-Linked-* headers, a slow mode), bundled with esbuild as the
// extension-host tests are, serving the tiny fixture ViT for the "Download from Hugging Face…" step.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { harnessDir, repoRoot } from './code-server.mjs';

export const MOCK_REPO_ID = 'tiny-org/vit-photo';
const FILES = ['config.json', 'preprocessor_config.json', 'model.safetensors'];
const WEIGHTS = 'model.safetensors';

/**
 * Starts the mock hub on 127.0.0.1. Returns { mock, env, slowWeights(), normalSpeed(), close() }:
 * `env` points an extension host at it, with a fresh cache under `root` and no token or offline
 * flag inherited from the machine running the tests.
 */
export async function startMockHub(root) {
  const esbuild = createRequire(path.join(repoRoot, 'package.json'))('esbuild');
  // .cjs: test/e2e/package.json says "type": "module".
  const bundle = path.join(harnessDir, 'out', 'hub-mock.cjs');
  await esbuild.build({
    entryPoints: [path.join(repoRoot, 'test', 'unit', 'io', 'hub-mock.ts')],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    outfile: bundle,
    logLevel: 'warning',
  });
  const { MockHub, sha256 } = createRequire(import.meta.url)(bundle);
  const fixture = path.join(repoRoot, 'test', 'fixtures', 'golden', 'vit-photo');
  const files = Object.fromEntries(FILES.map((f) => [f, readFileSync(path.join(fixture, f))]));
  const mock = await MockHub.start({ [MOCK_REPO_ID]: { files } });
  const weightsSha = sha256(files[WEIGHTS]);
  return {
    mock,
    weightsBytes: files[WEIGHTS].length,
    cacheDir: path.join(root, 'hf-home', 'hub'),
    env: { HF_ENDPOINT: mock.endpoint, HF_HOME: path.join(root, 'hf-home'), HF_HUB_CACHE: path.join(root, 'hf-home', 'hub'), HF_TOKEN: '', HF_HUB_OFFLINE: '' },
    /** The CDN trickles the weights (1 kB every 100 ms), so there is time to watch and to Cancel. */
    slowWeights: () => mock.cdnBehaviour.set(weightsSha, { slow: { bytes: 1000, intervalMs: 100 } }),
    normalSpeed: () => mock.cdnBehaviour.clear(),
    close: () => mock.close(),
  };
}
