/** Tiny ONNX models for the engine tests, built with our own encoder. */
import { encodeModel, OnnxDataType, type ExternalData, type TensorProto } from '../../../src/core/onnx/proto.js';

/** W in y = x·W, p = softmax(y): [2, 3]. */
export const SMALL_WEIGHTS = new Float32Array([1, 2, 3, 4, 5, 6]);

/**
 * x [1, 2] → y = x·W [1, 3] → p = softmax(y) [1, 3]. Both y and p are outputs, so tests can
 * fetch one of them. W is inline, or external data when `external` is given.
 */
export function matmulSoftmaxModel(external?: ExternalData): Uint8Array {
  const w: TensorProto = external
    ? { name: 'w', dataType: OnnxDataType.FLOAT, dims: [2, 3], external }
    : { name: 'w', dataType: OnnxDataType.FLOAT, dims: [2, 3], raw: new Uint8Array(SMALL_WEIGHTS.buffer.slice(0)) };
  return encodeModel({
    opsets: { '': 17 },
    graph: {
      name: 'matmul_softmax',
      nodes: [
        { opType: 'MatMul', inputs: ['x', 'w'], outputs: ['y'] },
        { opType: 'Softmax', inputs: ['y'], outputs: ['p'], attributes: { axis: -1 } },
      ],
      initializers: [w],
      inputs: [{ name: 'x', elemType: OnnxDataType.FLOAT, dims: [1, 2] }],
      outputs: [
        { name: 'y', elemType: OnnxDataType.FLOAT, dims: [1, 3] },
        { name: 'p', elemType: OnnxDataType.FLOAT, dims: [1, 3] },
      ],
    },
  });
}

/** What matmulSoftmaxModel computes, in float64. */
export function expectedMatmulSoftmax(x: readonly number[]): { y: number[]; p: number[] } {
  const y = [0, 1, 2].map((j) => x[0] * SMALL_WEIGHTS[j] + x[1] * SMALL_WEIGHTS[3 + j]);
  const max = Math.max(...y);
  const e = y.map((v) => Math.exp(v - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return { y, p: e.map((v) => v / sum) };
}

/**
 * h ← h·W, `steps` times, with x and W [size, size]: 2·size³·steps FLOPs, heavy enough to block
 * a thread for a measurable time. W has variance 1/size so values stay finite.
 */
export function matmulChainModel(size: number, steps: number): Uint8Array {
  const w = new Float32Array(size * size);
  let seed = 12345;
  const scale = Math.sqrt(3 / size);
  for (let i = 0; i < w.length; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    w[i] = (seed / 0xffffffff - 0.5) * 2 * scale;
  }
  const nodes = [];
  for (let i = 0; i < steps; i++) {
    nodes.push({ opType: 'MatMul', inputs: [i === 0 ? 'x' : `h${i}`, 'w'], outputs: [i === steps - 1 ? 'out' : `h${i + 1}`] });
  }
  return encodeModel({
    opsets: { '': 17 },
    graph: {
      name: 'matmul_chain',
      nodes,
      initializers: [{ name: 'w', dataType: OnnxDataType.FLOAT, dims: [size, size], raw: new Uint8Array(w.buffer) }],
      inputs: [{ name: 'x', elemType: OnnxDataType.FLOAT, dims: [size, size] }],
      outputs: [{ name: 'out', elemType: OnnxDataType.FLOAT, dims: [size, size] }],
    },
  });
}

/** ids int64 [n] → Cast to float32 "ids_f"; mask bool [n] → Not "not_mask"; half float16 [n] → Identity "half_out". */
export function mixedTypesModel(n: number): Uint8Array {
  return encodeModel({
    opsets: { '': 17 },
    graph: {
      name: 'mixed_types',
      nodes: [
        { opType: 'Cast', inputs: ['ids'], outputs: ['ids_f'], attributes: { to: OnnxDataType.FLOAT } },
        { opType: 'Not', inputs: ['mask'], outputs: ['not_mask'] },
        { opType: 'Identity', inputs: ['half'], outputs: ['half_out'] },
      ],
      initializers: [],
      inputs: [
        { name: 'ids', elemType: OnnxDataType.INT64, dims: [n] },
        { name: 'mask', elemType: OnnxDataType.BOOL, dims: [n] },
        { name: 'half', elemType: OnnxDataType.FLOAT16, dims: [n] },
      ],
      outputs: [
        { name: 'ids_f', elemType: OnnxDataType.FLOAT, dims: [n] },
        { name: 'not_mask', elemType: OnnxDataType.BOOL, dims: [n] },
        { name: 'half_out', elemType: OnnxDataType.FLOAT16, dims: [n] },
      ],
    },
  });
}

/**
 * A cache-shaped model: past [P, 2] and x [T, 2] → rows = 2·x [T, 2] (the step's new rows) and
 * sum [1, 2] = column sums of Concat(past, rows), so a test sees which rows the run was fed.
 */
export function appendRowsModel(): Uint8Array {
  return encodeModel({
    opsets: { '': 17 },
    graph: {
      name: 'append_rows',
      nodes: [
        { opType: 'Add', inputs: ['x', 'x'], outputs: ['rows'] },
        { opType: 'Concat', inputs: ['past', 'rows'], outputs: ['all'], attributes: { axis: 0 } },
        { opType: 'ReduceSum', inputs: ['all', 'axes'], outputs: ['sum'], attributes: { keepdims: 1 } },
      ],
      initializers: [{ name: 'axes', dataType: OnnxDataType.INT64, dims: [1], raw: new Uint8Array(BigInt64Array.of(0n).buffer) }],
      inputs: [
        { name: 'past', elemType: OnnxDataType.FLOAT, dims: ['P', 2] },
        { name: 'x', elemType: OnnxDataType.FLOAT, dims: ['T', 2] },
      ],
      outputs: [
        { name: 'rows', elemType: OnnxDataType.FLOAT, dims: ['T', 2] },
        { name: 'sum', elemType: OnnxDataType.FLOAT, dims: [1, 2] },
      ],
    },
  });
}
