/** Golden-fixture access for the image tests. */
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { readSafetensorsAll, type LoadedTensor } from '../../../src/core/io/safetensors.js';

import { GOLDEN } from '../parity.js';

export { GOLDEN, PHOTOS } from '../parity.js';

const files = new Map<string, Promise<Map<string, LoadedTensor>>>();

/** A tensor from a fixture safetensors file (path relative to GOLDEN); files are read once. */
export async function goldenTensor(file: string, name: string): Promise<LoadedTensor> {
  let tensors = files.get(file);
  if (!tensors) files.set(file, (tensors = readSafetensorsAll(path.join(GOLDEN, file))));
  const t = (await tensors).get(name);
  if (!t) throw new Error(`${file} has no tensor ${name}`);
  return t;
}

export async function goldenJson<T>(file: string): Promise<T> {
  return JSON.parse(await readFile(path.join(GOLDEN, file), 'utf8')) as T;
}

/** Largest |a[i] − b[i]|; throws on a length mismatch. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= worst)) worst = Number.isNaN(d) ? Infinity : d;
  }
  return worst;
}
