/**
 * Sweeps the V* search thresholds (confidenceHigh/Low, cue threshold and its floor) over synthetic
 * scenes (bench/lib/vstar-calibration.ts): photos with a smaller photo pasted at a known box, plus
 * scenes without it, searched with SyntheticSearchModel (a seeded stand-in for CLIP; no trained
 * weights are available offline). Prints the defaults' figures, the best settings by merit
 * (share of searches whose box holds the object − share of false finds), and per object size.
 *
 * What it measures is the search's logic under assumed score statistics, not CLIP's accuracy.
 */
import type { SyntheticModelOptions } from '../src/core/search/synthetic-scene';
import { DEFAULT_SEARCH_OPTIONS, type SearchOptions } from '../src/core/search/vstar';
import { OBJECT_SIZES, calibrationScenes, evaluate, merit, sweepGrid, type CalibrationFigures } from './lib/vstar-calibration';
import { figure, now } from './lib/report';

const SEEDS = [1, 2, 3];
/** SPEC §7.2's initial guesses (V*'s 0.5/0.3), before this calibration. */
const SPEC_INITIAL: SearchOptions = { confidenceHigh: 0.5, confidenceLow: 0.3, cueThreshold: 0.85, cueThresholdDecay: 0.9, cueThresholdMinimum: 0.6 };
const MODEL_VARIANTS: SyntheticModelOptions[] = [0.5, 0.75, 1].flatMap((noise) => [-3, -2].map((cropBias) => ({ noise, cropBias })));

const pct = (n: number, d: number): string => `${((100 * n) / d).toFixed(0)} %`;
const describe = (f: CalibrationFigures): string =>
  `covers ${pct(f.covers, f.present)}, IoU>0.5 ${pct(f.iouHits, f.present)}, found ${pct(f.found, f.present)}, false finds ${pct(f.falseFinds, f.absent)}, ${f.meanNodes.toFixed(1)} nodes`;
const name = (o: SearchOptions): string => `high ${o.confidenceHigh} low ${o.confidenceLow} cue ${o.cueThreshold}→${o.cueThresholdMinimum}`;

async function main(): Promise<void> {
  const t = now();
  const scenes = await calibrationScenes();
  console.log(`${scenes.length} scenes (${scenes.filter((s) => !s.truth).length} without the object) × ${SEEDS.length} noise seeds`);
  const defaults = await evaluate(scenes, {}, SEEDS);
  console.log(`defaults (${name(DEFAULT_SEARCH_OPTIONS)}): ${describe(defaults)}`);
  const results: { options: SearchOptions; f: CalibrationFigures }[] = [];
  for (const options of sweepGrid()) results.push({ options, f: await evaluate(scenes, options, SEEDS) });
  results.sort((a, b) => merit(b.f) - merit(a.f) || a.f.meanNodes - b.f.meanNodes);
  console.log(`best of ${results.length} settings:`);
  for (const r of results.slice(0, 10)) console.log(`  ${name(r.options)}: merit ${merit(r.f).toFixed(3)}; ${describe(r.f)}`);
  console.log('worst:');
  for (const r of results.slice(-3)) console.log(`  ${name(r.options)}: merit ${merit(r.f).toFixed(3)}; ${describe(r.f)}`);
  // The score statistics are assumptions: check the leading settings, V*'s/SPEC's initial 0.5/0.3
  // and the defaults under other noise levels and background crop scores.
  const candidates = [SPEC_INITIAL, DEFAULT_SEARCH_OPTIONS, ...results.slice(0, 5).map((r) => r.options), { confidenceHigh: 0.8, confidenceLow: 0.5 }];
  console.log('robustness (merit per model variant, then the worst):');
  for (const options of candidates) {
    const merits: number[] = [];
    for (const variant of MODEL_VARIANTS) merits.push(merit(await evaluate(scenes, options, SEEDS, variant)));
    console.log(`  ${name({ ...DEFAULT_SEARCH_OPTIONS, ...options })}: ${merits.map((m) => m.toFixed(2)).join(' ')}; worst ${Math.min(...merits).toFixed(2)}`);
    if (options === DEFAULT_SEARCH_OPTIONS) figure('vstar_calibration_default_worst_merit', Math.min(...merits), '');
  }
  console.log(`  (variants: ${MODEL_VARIANTS.map((v) => `noise ${v.noise} cropBias ${v.cropBias}`).join('; ')})`);
  for (const size of OBJECT_SIZES) {
    const subset = scenes.filter((s) => !s.truth || (s.truth.width === size.width && s.truth.height === size.height));
    console.log(`defaults, ${size.width}×${size.height} objects: ${describe(await evaluate(subset, {}, SEEDS))}`);
  }
  figure('vstar_calibration_default_covers', (100 * defaults.covers) / defaults.present, '%');
  figure('vstar_calibration_default_iou_hits', (100 * defaults.iouHits) / defaults.present, '%');
  figure('vstar_calibration_default_false_finds', (100 * defaults.falseFinds) / defaults.absent, '%');
  figure('vstar_calibration_best_merit', merit(results[0]!.f), '');
  console.log(`${((now() - t) / 1000).toFixed(1)} s`);
}

void main();
