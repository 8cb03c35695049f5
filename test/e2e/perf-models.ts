/**
 * Writes the random-weight models the interactive benchmark (test/e2e/perf.mjs) inspects:
 * ViT-B/16 at 224 (197 tokens) and ViT-L/14 at 336 (577 tokens, 24 layers × 16 heads).
 * Usage: node --import tsx test/e2e/perf-models.ts <folder>
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { VIT_B16, writeRandomViT } from '../../bench/lib/random-checkpoint';

async function main(): Promise<void> {
  const out = process.argv[2];
  if (!out) throw new Error('usage: perf-models.ts <folder>');
  const b16 = path.join(out, 'vit-b16-random');
  const l14 = path.join(out, 'vit-l14-336-random');
  await fs.mkdir(b16, { recursive: true });
  await fs.mkdir(l14, { recursive: true });
  await writeRandomViT(b16, VIT_B16);
  await writeRandomViT(l14, { hidden: 1024, layers: 24, heads: 16, intermediate: 4096, image: 336, patch: 14, labels: 1000 });
  // writeRandomViT's processor config resizes to 224; this model takes 336.
  const processor = path.join(l14, 'preprocessor_config.json');
  const config = JSON.parse(await fs.readFile(processor, 'utf8')) as Record<string, unknown>;
  await fs.writeFile(processor, JSON.stringify({ ...config, size: 336 }, null, 2));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
