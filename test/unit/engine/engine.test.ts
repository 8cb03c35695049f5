import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { CancelledError, UserError } from '../../../src/core/errors.js';
import { InferenceEngine, type TensorData } from '../../../src/core/engine/client.js';
import { appendRowsModel, expectedMatmulSoftmax, matmulChainModel, matmulSoftmaxModel, mixedTypesModel, SMALL_WEIGHTS } from './models.js';

const HEAVY_SIZE = 1024;
/** 24 MatMuls of 1024³: ≈52 GFLOP, ≈200 ms on 2 threads of the CI machine. */
const HEAVY_STEPS = 24;

function input(values: number[]): Record<string, TensorData> {
  return { x: { type: 'float32', dims: [1, values.length], data: new Float32Array(values) } };
}

function heavyInput(): Record<string, TensorData> {
  return { x: { type: 'float32', dims: [HEAVY_SIZE, HEAVY_SIZE], data: new Float32Array(HEAVY_SIZE * HEAVY_SIZE).fill(0.5) } };
}

function assertClose(actual: ArrayLike<number>, expected: readonly number[], tolerance = 1e-5): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tolerance, `[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

/** The output's data, checked to be float32 and to own its whole (transferred) buffer. */
function floats(tensor: TensorData | undefined): Float32Array {
  assert.ok(tensor, 'output missing');
  assert.equal(tensor.type, 'float32');
  const data = tensor.data as Float32Array;
  assert.equal(data.byteOffset, 0);
  assert.equal(data.buffer.byteLength, data.byteLength, 'output buffer should be its own, transferred');
  return data;
}

async function rejectsWith(promise: Promise<unknown>, check: (error: Error) => void): Promise<void> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof Error, `not an Error: ${String(error)}`);
    check(error);
    return;
  }
  assert.fail('expected a rejection');
}

describe('engine: InferenceEngine', function () {
  let engine: InferenceEngine;
  let heavyModel: Uint8Array;
  let tmp: string;

  before(function () {
    heavyModel = matmulChainModel(HEAVY_SIZE, HEAVY_STEPS);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'engine-test-'));
  });

  after(function () {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  beforeEach(function () {
    // Two threads: the heavy model's run time then does not shrink on many-core machines.
    engine = InferenceEngine.create({ threads: 2 });
  });

  afterEach(async function () {
    await engine.dispose();
  });

  it('runs a model and returns the right numbers in transferred buffers', async function () {
    const info = await engine.loadSession('small', { modelBytes: matmulSoftmaxModel() });
    assert.deepEqual(info.inputNames, ['x']);
    assert.deepEqual(info.outputNames, ['y', 'p']);
    const out = await engine.run('small', input([0.5, -1]), ['y', 'p']);
    const expected = expectedMatmulSoftmax([0.5, -1]);
    assertClose(floats(out.y), expected.y);
    assertClose(floats(out.p), expected.p);
    assert.deepEqual(out.p.dims, [1, 3]);
  });

  it('moves int64, bool and float16 tensors both ways', async function () {
    await engine.loadSession('mixed', { modelBytes: mixedTypesModel(3) });
    const out = await engine.run(
      'mixed',
      {
        ids: { type: 'int64', dims: [3], data: new BigInt64Array([5n, -2n, 40000n]) },
        mask: { type: 'bool', dims: [3], data: new Uint8Array([1, 0, 1]) },
        half: { type: 'float16', dims: [3], data: new Uint16Array([0x3c00, 0xc000, 0x7bff]) }, // 1, -2, 65504
      },
      ['ids_f', 'not_mask', 'half_out'],
    );
    assert.deepEqual([...floats(out.ids_f)], [5, -2, 40000]);
    assert.equal(out.not_mask.type, 'bool');
    assert.deepEqual([...out.not_mask.data], [0, 1, 0]);
    assert.equal(out.half_out.type, 'float16');
    assert.ok(out.half_out.data instanceof Uint16Array);
    assert.deepEqual([...out.half_out.data], [0x3c00, 0xc000, 0x7bff]);
  });

  it('returns only the fetched outputs', async function () {
    await engine.loadSession('small', { modelBytes: matmulSoftmaxModel() });
    const out = await engine.run('small', input([1, 1]), ['p']);
    assert.deepEqual(Object.keys(out), ['p']);
    assertClose(floats(out.p), expectedMatmulSoftmax([1, 1]).p);
  });

  it('loads weights from external data in externalDataDir', async function () {
    // Unaligned offset, as in a safetensors file whose header length is not a multiple of 4.
    const offset = 7;
    const file = Buffer.concat([Buffer.alloc(offset, 0xee), Buffer.from(SMALL_WEIGHTS.buffer), Buffer.alloc(5, 0xee)]);
    fs.writeFileSync(path.join(tmp, 'w.bin'), file);
    const modelBytes = matmulSoftmaxModel({ location: 'w.bin', offset, length: SMALL_WEIGHTS.byteLength });

    await engine.loadSession('external', { modelBytes, externalDataDir: tmp });
    const out = await engine.run('external', input([2, 3]), ['y']);
    assertClose(floats(out.y), expectedMatmulSoftmax([2, 3]).y);

    // The folder is what made it work: without it ORT looks next to the process's cwd.
    await rejectsWith(engine.loadSession('external-no-dir', { modelBytes }), (error) => {
      assert.ok(error instanceof UserError, error.name);
      assert.match(error.message, /external-no-dir/);
    });
  });

  it('loads a model file, with external data beside it', async function () {
    const dir = fs.mkdtempSync(path.join(tmp, 'file-'));
    fs.writeFileSync(path.join(dir, 'w.bin'), Buffer.from(SMALL_WEIGHTS.buffer));
    fs.writeFileSync(path.join(dir, 'model.onnx'), matmulSoftmaxModel({ location: 'w.bin', offset: 0, length: SMALL_WEIGHTS.byteLength }));
    await engine.loadSession('from-file', { modelPath: path.join(dir, 'model.onnx') });
    const out = await engine.run('from-file', input([-1, 2]), ['y']);
    assertClose(floats(out.y), expectedMatmulSoftmax([-1, 2]).y);
  });

  it('reuses a session loaded under the same key', async function () {
    const first = await engine.loadSession('cached', { modelBytes: matmulSoftmaxModel() });
    assert.equal(first.reused, false);
    assert.ok(engine.hasSession('cached'));
    // Garbage bytes under a known key: proof that nothing is loaded again.
    const started = performance.now();
    const second = await engine.loadSession('cached', { modelBytes: new Uint8Array([1, 2, 3]) });
    assert.ok(performance.now() - started < 50, 'a cached load should not wait for the worker');
    assert.deepEqual(second.outputNames, first.outputNames);
    const out = await engine.run('cached', input([1, 0]), ['y']);
    assertClose(floats(out.y), expectedMatmulSoftmax([1, 0]).y);
  });

  it('releases a session', async function () {
    await engine.loadSession('released', { modelBytes: matmulSoftmaxModel() });
    await engine.releaseSession('released');
    assert.equal(engine.hasSession('released'), false);
    await rejectsWith(engine.run('released', input([1, 0]), ['y']), (error) => assert.match(error.message, /No session "released"/));
  });

  it('reports a bad model as a UserError naming it, and keeps working', async function () {
    await rejectsWith(engine.loadSession('broken-model', { modelBytes: new Uint8Array([8, 9, 10, 11, 12]) }), (error) => {
      assert.ok(error instanceof UserError, error.name);
      assert.match(error.message, /Could not load model "broken-model"/);
    });
    assert.equal(engine.hasSession('broken-model'), false);
    await engine.loadSession('good', { modelBytes: matmulSoftmaxModel() });
    await engine.run('good', input([0, 0]), ['p']);
  });

  it('gives clear errors for wrong feeds and fetches', async function () {
    await engine.loadSession('small', { modelBytes: matmulSoftmaxModel() });
    await rejectsWith(engine.run('small', input([1, 1]), ['nope']), (error) =>
      assert.match(error.message, /Model "small" has no output "nope"; its outputs are: y, p/),
    );
    await rejectsWith(engine.run('small', {}, ['y']), (error) => assert.match(error.message, /needs input "x"/));
    await rejectsWith(engine.run('small', { x: { type: 'float32', dims: [1, 3], data: new Float32Array(2) } }, ['y']), (error) =>
      assert.match(error.message, /Input "x" of model "small": dims \[1, 3\] need 3 elements, data has 2/),
    );
    await rejectsWith(engine.run('small', { x: { type: 'float32', dims: [1, 3], data: new Float32Array(3) } }, ['y']), (error) =>
      assert.match(error.message, /Running model "small" failed: .*invalid dimensions/i),
    );
  });

  it('accepts partial views, shared buffers, and transferred inputs', async function () {
    await engine.loadSession('small', { modelBytes: matmulSoftmaxModel() });
    const expected = expectedMatmulSoftmax([3, -2]).y;

    const big = new Float32Array([9, 3, -2, 9]);
    const view = big.subarray(1, 3);
    assertClose(floats((await engine.run('small', { x: { type: 'float32', dims: [1, 2], data: view } }, ['y'])).y), expected);
    assert.equal(big.length, 4, 'a partial view is copied, its buffer left alone');

    // onnxruntime-node itself rejects SharedArrayBuffer-backed tensors; the worker copies them.
    const shared = new Float32Array(new SharedArrayBuffer(8));
    shared.set([3, -2]);
    assertClose(floats((await engine.run('small', { x: { type: 'float32', dims: [1, 2], data: shared } }, ['y'])).y), expected);

    const owned = new Float32Array([3, -2]);
    const result = engine.run('small', { x: { type: 'float32', dims: [1, 2], data: owned } }, ['y'], undefined, { transferInputs: true });
    assert.equal(owned.byteLength, 0, 'a transferred input is detached');
    assertClose(floats((await result).y), expected);
  });

  it('keeps a row state in the worker: each run is fed the rows so far and appends its own', async function () {
    await engine.loadSession('append', { modelBytes: appendRowsModel() });
    const state = await engine.createState('cache', { slots: [{ input: 'past', output: 'rows' }], width: 2, capacity: 3, type: 'float32' });
    const x = (rows: number[][]): Record<string, TensorData> => ({ x: { type: 'float32', dims: [rows.length, 2], data: Float32Array.from(rows.flat()) } });
    const run = (rows: number[][]) => engine.run('append', x(rows), ['sum'], undefined, { state: { key: 'cache', rows: rows.length } });

    const first = await run([[1, 2], [3, 4]]); // past: no rows
    assert.deepEqual([...floats(first.sum)], [8, 12]);
    assert.deepEqual(Object.keys(first), ['sum'], 'the state output is not returned');
    const second = await run([[10, 20]]); // past: 2·[[1, 2], [3, 4]]
    assert.deepEqual([...floats(second.sum)], [8 + 20, 12 + 40]);
    await rejectsWith(run([[0, 0]]), (error) => assert.match(error.message, /holds 3 rows; it has 3 and this run would add 1/));

    await state.dispose();
    await rejectsWith(run([[0, 0]]), (error) => assert.match(error.message, /No row state "cache"/));
  });

  it('rejects a request whose signal is already aborted', async function () {
    await engine.loadSession('small', { modelBytes: matmulSoftmaxModel() });
    await rejectsWith(engine.run('small', input([1, 1]), ['y'], AbortSignal.abort()), (error) => assert.ok(error instanceof CancelledError));
  });

  it('drops a queued request that is cancelled', async function () {
    await engine.loadSession('heavy', { modelBytes: heavyModel });
    await engine.loadSession('small', { modelBytes: matmulSoftmaxModel() });
    const started = performance.now();
    const first = engine.run('heavy', heavyInput(), ['out']).then(() => performance.now() - started);
    const controller = new AbortController();
    const queued = engine.run('heavy', heavyInput(), ['out'], controller.signal);
    const afterIt = engine.run('small', input([1, 1]), ['y']).then(() => performance.now() - started);
    controller.abort();
    await rejectsWith(queued, (error) => assert.ok(error instanceof CancelledError, error.name));
    const cancelledAt = performance.now() - started;
    const [firstMs, afterMs] = await Promise.all([first, afterIt]);
    assert.ok(cancelledAt < firstMs, `the caller is told at once (${cancelledAt.toFixed(0)} ms), not after the running job (${firstMs.toFixed(0)} ms)`);
    // Had the cancelled run been served, the small one would have waited for it too.
    assert.ok(afterMs < firstMs * 1.5, `next request done at ${afterMs.toFixed(0)} ms, first at ${firstMs.toFixed(0)} ms`);
  });

  it('rejects a running request at once when cancelled, and keeps working', async function () {
    await engine.loadSession('heavy', { modelBytes: heavyModel });
    const controller = new AbortController();
    const started = performance.now();
    const running = engine.run('heavy', heavyInput(), ['out'], controller.signal);
    setTimeout(() => controller.abort(), 30);
    await rejectsWith(running, (error) => assert.ok(error instanceof CancelledError, error.name));
    const cancelMs = performance.now() - started;
    const out = await engine.run('heavy', heavyInput(), ['out']);
    const bothMs = performance.now() - started;
    assert.equal(floats(out.out).length, HEAVY_SIZE * HEAVY_SIZE);
    assert.ok(cancelMs < bothMs / 2, `cancelled after ${cancelMs.toFixed(0)} ms of ${bothMs.toFixed(0)} ms`);
  });

  it('cancels a queued load when its only caller gives up', async function () {
    await engine.loadSession('heavy', { modelBytes: heavyModel });
    const busy = engine.run('heavy', heavyInput(), ['out']);
    const controller = new AbortController();
    const load = engine.loadSession('given-up', { modelBytes: matmulSoftmaxModel() }, { signal: controller.signal });
    assert.ok(engine.hasSession('given-up'));
    controller.abort();
    await rejectsWith(load, (error) => assert.ok(error instanceof CancelledError));
    assert.equal(engine.hasSession('given-up'), false);
    await busy;
    await rejectsWith(engine.run('given-up', input([1, 1]), ['y']), (error) => assert.match(error.message, /No session "given-up"/));
  });

  it('dispose rejects pending work and ends the worker', async function () {
    await engine.loadSession('heavy', { modelBytes: heavyModel });
    const running = engine.run('heavy', heavyInput(), ['out']);
    const queued = engine.run('heavy', heavyInput(), ['out']);
    const disposed = engine.dispose();
    await rejectsWith(running, (error) => assert.ok(error instanceof CancelledError, error.name));
    await rejectsWith(queued, (error) => assert.ok(error instanceof CancelledError, error.name));
    await disposed; // settles when the thread has exited
    assert.equal(engine.hasSession('heavy'), false);
    await rejectsWith(engine.run('heavy', heavyInput(), ['out']), (error) => assert.match(error.message, /disposed/));
  });

  it("keeps the calling thread's event loop running while a model runs", async function () {
    await engine.loadSession('heavy', { modelBytes: heavyModel });
    await engine.run('heavy', heavyInput(), ['out']); // warm-up: first-run allocations

    const tickMs = 5;
    let last = performance.now();
    let maxLag = 0;
    let ticks = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      maxLag = Math.max(maxLag, now - last - tickMs);
      last = now;
      ticks++;
    }, tickMs);
    const started = performance.now();
    try {
      await engine.run('heavy', heavyInput(), ['out']);
    } finally {
      clearInterval(timer);
    }
    const runMs = performance.now() - started;
    console.log(`      heavy run ${runMs.toFixed(0)} ms, max event-loop lag ${maxLag.toFixed(1)} ms`);
    assert.ok(runMs >= 100, `the model should block for a while (${runMs.toFixed(0)} ms) for this test to mean anything`);
    // A run on this thread would stall it for the whole run: one gap ≈ runMs and next to no ticks.
    // The bounds leave room for a loaded machine descheduling us (the bench reports the real lag).
    assert.ok(maxLag < runMs / 2, `max lag ${maxLag.toFixed(1)} ms during a ${runMs.toFixed(0)} ms run`);
    assert.ok(ticks >= runMs / tickMs / 4, `${ticks} timer ticks during a ${runMs.toFixed(0)} ms run`);
  });
});

describe('engine: worker crashes', function () {
  const crashWorker = path.join(__dirname, 'crash-worker.ts');

  for (const [key, cause] of [
    ['crash:exit', /exit code 3/],
    ['crash:throw', /boom from the test worker/],
  ] as const) {
    it(`rejects pending work and starts a new worker after ${key}`, async function () {
      const engine = InferenceEngine.create({ workerPath: crashWorker });
      try {
        await engine.loadSession('small', { modelBytes: matmulSoftmaxModel() });
        await engine.loadSession(key, { modelBytes: matmulSoftmaxModel() });
        const crashing = engine.run(key, input([1, 1]), ['y']);
        const queued = engine.run('small', input([1, 1]), ['y']);
        for (const request of [crashing, queued]) {
          await rejectsWith(request, (error) => {
            assert.match(error.message, /inference worker stopped unexpectedly/);
            assert.match(error.message, cause);
          });
        }
        assert.equal(engine.hasSession('small'), false, 'sessions die with the worker');
        await engine.loadSession('small', { modelBytes: matmulSoftmaxModel() });
        const out = await engine.run('small', input([1, 1]), ['y']);
        assertClose(floats(out.y), expectedMatmulSoftmax([1, 1]).y);
      } finally {
        await engine.dispose();
      }
    });
  }
});

describe('engine: process lifetime', function () {
  const script = path.join(__dirname, 'lifetime-script.ts');

  async function runScript(mode: string): Promise<string> {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', script, mode], { timeout: 30000 });
    return stdout.trim();
  }

  it('an awaited dispose() settles even when nothing else keeps the process alive', async function () {
    assert.equal(await runScript('dispose'), 'disposed');
  });

  it('an idle engine does not keep the process alive', async function () {
    // execFile's timeout would kill a process that hangs on the worker.
    assert.equal(await runScript('forget'), 'forgotten');
  });
});
