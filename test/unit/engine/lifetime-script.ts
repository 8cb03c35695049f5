/**
 * Run as its own process by the lifetime tests: uses an engine, then either awaits dispose()
 * ("dispose") or drops the engine without disposing it ("forget"), and reports how it ended.
 * Nothing else keeps this process's event loop alive, which is the point.
 */
import { InferenceEngine } from '../../../src/core/engine/client.js';
import { matmulSoftmaxModel } from './models.js';

async function main(mode: string): Promise<void> {
  const engine = InferenceEngine.create();
  await engine.loadSession('small', { modelBytes: matmulSoftmaxModel() });
  await engine.run('small', { x: { type: 'float32', dims: [1, 2], data: new Float32Array([1, 2]) } }, ['p']);
  if (mode === 'dispose') {
    await engine.dispose();
    console.log('disposed');
  } else {
    console.log('forgotten');
  }
}

void main(process.argv[2] ?? '');
