/**
 * V* search with CLIP ViT-B/32 (seeded random weights in the real layout: time only, the boxes mean
 * nothing) on a 2000×1500 photograph — hubble_deep_field.jpg upscaled, with rocket.jpg pasted small
 * (120×90) at a known box. Leaf size max(ceil(1500/4), 224) = 375: 2000×1500 → 1000×750 → 500×375.
 *
 * Figures, from one process:
 * - cold: first search with the default options, including graph build, session creation and
 *   the text tower for the target and negatives (4 templates each);
 * - default: the same search warm (fresh crop cache), and its node count — with random weights it
 *   may stop early, so it is not the worst case;
 * - full: the worst case — nothing is ever found (confidenceHigh > 1) and every split takes the
 *   CLIP-only contextual cue (cueThreshold > 1), so all 21 nodes are visited and every expanded
 *   node scores its 4 children; regionFraction 1 makes each detection crop the peak cell grown to
 *   224 px, a crop of its own (random weights give flat maps whose region is the whole node, a
 *   cache hit that would flatter the figure): batched (8 crops per run) and unbatched (1),
 *   interleaved, medians; crops through the vision tower per second for each;
 * - the letterbox + Pillow-exact bicubic preprocessing of the root crop (2000² → 224²).
 *
 * Target (issue 8): full search ≤ 10 s on the 2-core machine.
 */
import * as path from 'node:path';
import * as fs from 'node:fs/promises';
import { InferenceEngine } from '../src/core/engine/client';
import { physicalCoreCount } from '../src/core/engine/cpus';
import { decodeImage } from '../src/core/image/decode';
import { ModelRunner, openModel } from '../src/core/models/runner';
import { GraphCache } from '../src/core/onnx/cache';
import { CLIPSearchModel } from '../src/core/search/clip-search-model';
import { pasteScene } from '../src/core/search/synthetic-scene';
import { visualSearch, type SearchOptions } from '../src/core/search/vstar';
import { CLIP_B32, makeTempDir, writeRandomClip } from './lib/random-checkpoint';
import { PHOTOS } from './lib/vstar-calibration';
import { figure, median, now } from './lib/report';

const RUNS = Number(process.env.BENCH_RUNS ?? 2);
const TARGET = 'rocket';
const FULL: SearchOptions = { confidenceHigh: 1.01, cueThreshold: 1.01 };

async function main(): Promise<void> {
  const dir = await makeTempDir('vstar-b32');
  const threads = physicalCoreCount();
  const engine = InferenceEngine.create({ threads });
  try {
    let t = now();
    await writeRandomClip(dir, CLIP_B32);
    console.log(`generated CLIP B/32 random checkpoint in ${((now() - t) / 1000).toFixed(1)} s`);
    const scene = pasteScene(await decodeImage(path.join(PHOTOS, 'hubble_deep_field.jpg')), 2000, 1500, await decodeImage(path.join(PHOTOS, 'rocket.jpg')), {
      x: 1430, y: 310, width: 120, height: 90,
    });
    const loaded = await openModel(dir);
    if (loaded.kind !== 'clip') throw new Error('not a CLIP checkpoint');
    const runner = new ModelRunner(engine, new GraphCache(undefined)).clip(loaded);

    t = now();
    const cold = await visualSearch(new CLIPSearchModel(runner, scene), scene, TARGET);
    const coldMs = now() - t;

    t = now();
    const warmModel = new CLIPSearchModel(runner, scene);
    const warm = await visualSearch(warmModel, scene, TARGET);
    const warmMs = now() - t;
    if (warm.path.join() !== cold.path.join()) throw new Error('cold and warm searches took different paths');

    const full = { batched: [] as number[], unbatched: [] as number[] };
    const crops = { batched: 0, unbatched: 0 };
    const runs = { batched: 0, unbatched: 0 };
    let fullNodes = 0;
    for (let i = 0; i < RUNS; i++) {
      for (const [kind, batchSize] of [['batched', 8], ['unbatched', 1]] as const) {
        const model = new CLIPSearchModel(runner, scene, { batchSize, regionFraction: 1 });
        t = now();
        const result = await visualSearch(model, scene, TARGET, FULL);
        full[kind].push(now() - t);
        crops[kind] = model.stats.crops;
        runs[kind] = model.stats.runs;
        fullNodes = result.path.length;
      }
    }

    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      t = now();
      warmModel.cropPixels({ x: 0, y: 0, width: scene.width, height: scene.height });
      times.push(now() - t);
    }

    console.log(`V* search, CLIP B/32 random weights, ${scene.width}×${scene.height} scene, threads ${threads}, full runs ${RUNS} (medians)`);
    figure('vstar.b32.cold_search_s', coldMs / 1000, 's', 2);
    figure('vstar.b32.default_search_s', warmMs / 1000, 's', 2);
    figure('vstar.b32.default_search_nodes', warm.path.length, 'nodes', 0);
    figure('vstar.b32.default_search_crops', warmModel.stats.crops, 'crops', 0);
    figure('vstar.b32.full_search_nodes', fullNodes, 'nodes', 0);
    figure('vstar.b32.full_search_crops', crops.batched, 'crops', 0);
    figure('vstar.b32.full_search_batched_s', median(full.batched) / 1000, 's', 2);
    figure('vstar.b32.full_search_unbatched_s', median(full.unbatched) / 1000, 's', 2);
    figure('vstar.b32.crops_per_s_batched', crops.batched / (median(full.batched) / 1000), 'crops/s', 1);
    figure('vstar.b32.crops_per_s_unbatched', crops.unbatched / (median(full.unbatched) / 1000), 'crops/s', 1);
    figure('vstar.b32.vision_runs_batched', runs.batched, 'runs', 0);
    figure('vstar.b32.vision_runs_unbatched', runs.unbatched, 'runs', 0);
    figure('vstar.b32.root_crop_preprocess_ms', median(times), 'ms', 1);
    figure('vstar.b32.peak_rss_mb', process.resourceUsage().maxRSS / 1024, 'MB', 0);
  } finally {
    await engine.dispose();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
