/**
 * A graph builder over the ONNX encoder: values are names, ops append nodes, weights are
 * initializers whose bytes stay in the user's safetensors files (ONNX external data).
 */
import * as path from 'node:path';
import { UserError } from '../errors.js';
import type { Dtype, TensorDescriptor } from '../io/safetensors.js';
import {
  encodeModel,
  OnnxDataType,
  type AttributeValue,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfo,
} from './proto.js';

/** A value in the graph (ONNX values are identified by name). */
export type Value = string;

/** Opset of the default domain for every graph we build. */
export const OPSET = 17;

/**
 * Where a weight tensor lives on disk: a safetensors descriptor whose `file` is the real path
 * (symlinks resolved), as Checkpoint.describe returns it.
 */
export type WeightRef = TensorDescriptor;

const ONNX_FLOAT_TYPES: Partial<Record<Dtype, OnnxDataType>> = {
  F32: OnnxDataType.FLOAT,
  F16: OnnxDataType.FLOAT16,
  BF16: OnnxDataType.BFLOAT16,
};

export interface BuiltGraph {
  bytes: Uint8Array;
  /** Folder that external-data locations are relative to (undefined when every weight is inline). */
  externalDataDir?: string;
  inputs: readonly ValueInfo[];
  outputs: readonly ValueInfo[];
}

export class GraphBuilder {
  private readonly nodes: NodeProto[] = [];
  private readonly initializers: TensorProto[] = [];
  private readonly inputs: ValueInfo[] = [];
  private readonly outputs: ValueInfo[] = [];
  private readonly used = new Set<string>();
  private readonly weightValues = new Map<string, Value>();
  private externalDataDir: string | undefined;
  private scopes: string[] = [];

  constructor(readonly name: string) {}

  /** Runs `body` with node names prefixed by `scope` (readable names in profiles and errors). */
  scoped<T>(scope: string, body: () => T): T {
    this.scopes.push(scope);
    try {
      return body();
    } finally {
      this.scopes.pop();
    }
  }

  private fresh(hint: string): string {
    const base = [...this.scopes, hint].join('/');
    let name = base;
    for (let i = 1; this.used.has(name); i++) name = `${base}_${i}`;
    this.used.add(name);
    return name;
  }

  private claim(name: string): string {
    if (this.used.has(name)) throw new Error(`graph ${this.name}: value name ${name} used twice`);
    this.used.add(name);
    return name;
  }

  input(name: string, elemType: OnnxDataType, dims: readonly (number | string)[]): Value {
    this.inputs.push({ name: this.claim(name), elemType, dims });
    return name;
  }

  /** Marks `value` as a graph output. Name values with their output name when you create them (`op(..., {name})`). */
  output(value: Value, elemType: OnnxDataType, dims: readonly (number | string)[]): void {
    this.outputs.push({ name: value, elemType, dims });
  }

  /** A constant stored inside the model (small tensors: shapes, scalars, interpolated position tables). */
  constant(hint: string, data: Float32Array | BigInt64Array | Int32Array, dims: readonly number[]): Value {
    const dataType =
      data instanceof Float32Array ? OnnxDataType.FLOAT : data instanceof BigInt64Array ? OnnxDataType.INT64 : OnnxDataType.INT32;
    const name = this.fresh(hint);
    const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
    this.initializers.push({ name, dataType, dims, raw });
    return name;
  }

  /** An int64 1-D constant (shapes, axes, starts/ends). */
  ints(hint: string, values: readonly number[]): Value {
    return this.constant(hint, BigInt64Array.from(values, (v) => BigInt(v)), [values.length]);
  }

  /** A float scalar constant (rank 0). */
  scalar(hint: string, value: number): Value {
    return this.constant(hint, Float32Array.of(value), []);
  }

  /**
   * A checkpoint weight as an initializer whose bytes stay in the safetensors file.
   * F16/BF16 weights get a Cast to float: ORT's CPU kernels compute in fp32, and with full
   * graph optimisation the Cast is constant-folded once at session creation.
   */
  weight(ref: WeightRef): Value {
    const cached = this.weightValues.get(ref.name);
    if (cached) return cached;
    const location = this.externalLocation(ref.file);
    const dataType = ONNX_FLOAT_TYPES[ref.dtype];
    if (dataType === undefined) {
      throw new UserError(`tensor '${ref.name}' is stored as ${ref.dtype}; model weights must be F32, F16 or BF16.`, ref.file);
    }
    const name = this.claim(ref.name);
    this.initializers.push({
      name,
      dataType,
      dims: ref.shape,
      external: { location, offset: ref.byteOffset, length: ref.byteLength },
    });
    const value = ref.dtype === 'F32' ? name : this.op('Cast', [name], { to: OnnxDataType.FLOAT });
    this.weightValues.set(ref.name, value);
    return value;
  }

  /**
   * An initializer of any element type (e.g. packed 4-bit blocks as UINT8) whose bytes lie at
   * `ref.byteOffset` in `ref.file`, used as stored: no Cast. `ref.file` must be a real path in the
   * same folder as every other external weight of the graph; `ref.dtype` is not consulted.
   */
  externalTensor(ref: WeightRef, dataType: OnnxDataType): Value {
    const cached = this.weightValues.get(ref.name);
    if (cached) return cached;
    const location = this.externalLocation(ref.file);
    const name = this.claim(ref.name);
    this.initializers.push({ name, dataType, dims: ref.shape, external: { location, offset: ref.byteOffset, length: ref.byteLength } });
    this.weightValues.set(ref.name, name);
    return name;
  }

  /** The external-data location of `file`, which must be in the graph's one weights folder. */
  private externalLocation(file: string): string {
    const dir = path.dirname(file);
    if (this.externalDataDir === undefined) this.externalDataDir = dir;
    if (dir !== this.externalDataDir) {
      // ORT resolves every external-data location against one folder and refuses `..`.
      throw new Error(`weights of one model must live in one folder: ${file} is not in ${this.externalDataDir}`);
    }
    return path.basename(file);
  }

  /** Appends one node with one output; `name` fixes the output's name (for graph outputs). */
  op(opType: string, inputs: readonly Value[], attributes?: Record<string, AttributeValue>, opts?: { name?: string; domain?: string }): Value {
    const out = opts?.name ? this.claim(opts.name) : this.fresh(opType);
    this.nodes.push({ opType, inputs, outputs: [out], attributes, domain: opts?.domain, name: `${out}:node` });
    return out;
  }

  /** Appends one node with several outputs. */
  opMulti(opType: string, inputs: readonly Value[], outputCount: number, attributes?: Record<string, AttributeValue>, domain?: string): Value[] {
    const outs = Array.from({ length: outputCount }, () => this.fresh(opType));
    this.nodes.push({ opType, inputs, outputs: outs, attributes, domain, name: `${outs[0]}:node` });
    return outs;
  }

  build(opsets: Readonly<Record<string, number>> = { '': OPSET }, metadata?: Record<string, string>): BuiltGraph {
    const model: ModelProto = {
      graph: { name: this.name, nodes: this.nodes, initializers: this.initializers, inputs: this.inputs, outputs: this.outputs },
      opsets,
      metadata,
    };
    return { bytes: encodeModel(model), externalDataDir: this.externalDataDir, inputs: this.inputs, outputs: this.outputs };
  }
}
