/**
 * A small protobuf encoder for the ONNX messages we emit (onnx.proto3, IR version 9).
 *
 * Why our own: generic protobuf libraries are ~4× slower at encoding a ViT-B graph and the
 * published ONNX schema packages lag behind the spec (no int4). We only ever *write* ONNX, and
 * only a dozen message types, so a direct encoder is short and easy to check (the tests decode
 * what we write with @bufbuild/protobuf).
 *
 * Field numbers below are those of onnx/onnx.proto3.
 */

/** ONNX TensorProto.DataType values we use. */
export enum OnnxDataType {
  FLOAT = 1,
  UINT8 = 2,
  INT8 = 3,
  INT32 = 6,
  INT64 = 7,
  BOOL = 9,
  FLOAT16 = 10,
  DOUBLE = 11,
  BFLOAT16 = 16,
  UINT4 = 21,
  INT4 = 22,
}

const enum WireType {
  VARINT = 0,
  I64 = 1,
  LEN = 2,
  I32 = 5,
}

const enum AttributeType {
  FLOAT = 1,
  INT = 2,
  STRING = 3,
  TENSOR = 4,
  FLOATS = 6,
  INTS = 7,
  STRINGS = 8,
}

const textEncoder = new TextEncoder();

/** Append-only byte buffer with protobuf primitives. */
class ProtoWriter {
  private buf = new Uint8Array(256);
  private len = 0;

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  /** Varint of a non-negative or negative integer (negatives as 10-byte two's complement, as int64 requires). */
  varint(value: number | bigint): void {
    let v = BigInt.asUintN(64, BigInt(value));
    if (typeof value === 'number' && value >= 0 && value < 0x80000000) {
      // Fast path for the small values that make up nearly all of a graph.
      let n = value;
      this.reserve(5);
      while (n > 0x7f) {
        this.buf[this.len++] = (n & 0x7f) | 0x80;
        n >>>= 7;
      }
      this.buf[this.len++] = n;
      return;
    }
    this.reserve(10);
    while (v > 0x7fn) {
      this.buf[this.len++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.len++] = Number(v);
  }

  tag(field: number, wire: WireType): void {
    this.varint((field << 3) | wire);
  }

  bytes(field: number, data: Uint8Array): void {
    this.tag(field, WireType.LEN);
    this.varint(data.length);
    this.reserve(data.length);
    this.buf.set(data, this.len);
    this.len += data.length;
  }

  string(field: number, value: string | undefined): void {
    if (value === undefined || value === '') return;
    this.bytes(field, textEncoder.encode(value));
  }

  int(field: number, value: number | bigint | undefined): void {
    if (value === undefined) return;
    this.tag(field, WireType.VARINT);
    this.varint(value);
  }

  float(field: number, value: number): void {
    this.tag(field, WireType.I32);
    this.reserve(4);
    new DataView(this.buf.buffer, this.buf.byteOffset + this.len, 4).setFloat32(0, value, true);
    this.len += 4;
  }

  packedInts(field: number, values: readonly (number | bigint)[]): void {
    if (values.length === 0) return;
    const inner = new ProtoWriter();
    for (const v of values) inner.varint(v);
    this.bytes(field, inner.finish());
  }

  packedFloats(field: number, values: readonly number[]): void {
    if (values.length === 0) return;
    this.bytes(field, new Uint8Array(new Float32Array(values).buffer));
  }

  message(field: number, encode: (w: ProtoWriter) => void): void {
    const inner = new ProtoWriter();
    encode(inner);
    this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

/** Where an initializer's bytes live outside the model file (ONNX external data). */
export interface ExternalData {
  /** Path relative to the folder ORT resolves external data against; no `..`, not absolute. */
  location: string;
  offset: number;
  length: number;
}

export interface TensorProto {
  name: string;
  dataType: OnnxDataType;
  dims: readonly number[];
  /** Inline little-endian bytes… */
  raw?: Uint8Array;
  /** …or a reference into a file (our safetensors checkpoints). */
  external?: ExternalData;
}

export type AttributeValue =
  | number
  | string
  | readonly number[]
  | readonly string[]
  | { tensor: TensorProto }
  | { float: number }
  | { floats: readonly number[] };

export interface NodeProto {
  opType: string;
  inputs: readonly string[];
  outputs: readonly string[];
  name?: string;
  domain?: string;
  attributes?: Readonly<Record<string, AttributeValue>>;
}

/** A tensor type; a dimension is a fixed size or a symbolic name. */
export interface ValueInfo {
  name: string;
  elemType: OnnxDataType;
  dims: readonly (number | string)[];
}

export interface GraphProto {
  name: string;
  nodes: readonly NodeProto[];
  initializers: readonly TensorProto[];
  inputs: readonly ValueInfo[];
  outputs: readonly ValueInfo[];
}

export interface ModelProto {
  graph: GraphProto;
  /** Opset per domain; '' is the default ONNX domain. */
  opsets: Readonly<Record<string, number>>;
  producerName?: string;
  producerVersion?: string;
  docString?: string;
  metadata?: Readonly<Record<string, string>>;
}

/** IR version 9 covers opset 19+; ORT 1.30 accepts it, and it is what our opset 17 graphs need at minimum (8). */
const IR_VERSION = 9;

function writeTensor(w: ProtoWriter, t: TensorProto): void {
  w.packedInts(1, t.dims);
  w.int(2, t.dataType);
  w.string(8, t.name);
  if (t.raw) w.bytes(9, t.raw);
  if (t.external) {
    const entries: [string, string][] = [
      ['location', t.external.location],
      ['offset', String(t.external.offset)],
      ['length', String(t.external.length)],
    ];
    for (const [key, value] of entries) {
      w.message(13, (e) => {
        e.string(1, key);
        e.string(2, value);
      });
    }
    w.int(14, 1); // data_location = EXTERNAL
  }
}

// Array.isArray does not narrow readonly arrays.
function isList(value: AttributeValue): value is readonly number[] | readonly string[] {
  return Array.isArray(value);
}

function writeAttribute(w: ProtoWriter, name: string, value: AttributeValue): void {
  w.string(1, name);
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new Error(`attribute ${name}: use { float } for non-integer ${value}`);
    w.int(3, value);
    w.int(20, AttributeType.INT);
  } else if (typeof value === 'string') {
    w.string(4, value);
    w.int(20, AttributeType.STRING);
  } else if (isList(value)) {
    if (value.length > 0 && typeof value[0] === 'string') {
      for (const s of value as readonly string[]) w.bytes(9, textEncoder.encode(s));
      w.int(20, AttributeType.STRINGS);
    } else {
      w.packedInts(8, value as readonly number[]);
      w.int(20, AttributeType.INTS);
    }
  } else if ('tensor' in value) {
    w.message(5, (t) => writeTensor(t, value.tensor));
    w.int(20, AttributeType.TENSOR);
  } else if ('float' in value) {
    w.float(2, value.float);
    w.int(20, AttributeType.FLOAT);
  } else {
    w.packedFloats(7, value.floats);
    w.int(20, AttributeType.FLOATS);
  }
}

function writeNode(w: ProtoWriter, n: NodeProto): void {
  for (const i of n.inputs) w.bytes(1, textEncoder.encode(i)); // empty string = omitted optional input
  for (const o of n.outputs) w.bytes(2, textEncoder.encode(o));
  w.string(3, n.name);
  w.string(4, n.opType);
  for (const [name, value] of Object.entries(n.attributes ?? {})) {
    w.message(5, (a) => writeAttribute(a, name, value));
  }
  w.string(7, n.domain);
}

function writeValueInfo(w: ProtoWriter, v: ValueInfo): void {
  w.string(1, v.name);
  w.message(2, (type) =>
    type.message(1, (tensorType) => {
      tensorType.int(1, v.elemType);
      tensorType.message(2, (shape) => {
        for (const d of v.dims) {
          shape.message(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : dim.string(2, d)));
        }
      });
    }),
  );
}

function writeGraph(w: ProtoWriter, g: GraphProto): void {
  for (const n of g.nodes) w.message(1, (m) => writeNode(m, n));
  w.string(2, g.name);
  for (const t of g.initializers) w.message(5, (m) => writeTensor(m, t));
  for (const v of g.inputs) w.message(11, (m) => writeValueInfo(m, v));
  for (const v of g.outputs) w.message(12, (m) => writeValueInfo(m, v));
}

/** Serialises a model to ONNX protobuf bytes. */
export function encodeModel(model: ModelProto): Uint8Array {
  const w = new ProtoWriter();
  w.int(1, IR_VERSION);
  w.string(2, model.producerName ?? 'vision-inspector');
  w.string(3, model.producerVersion);
  w.string(6, model.docString);
  w.message(7, (g) => writeGraph(g, model.graph));
  for (const [domain, version] of Object.entries(model.opsets)) {
    w.message(8, (o) => {
      o.string(1, domain);
      o.int(2, version);
    });
  }
  for (const [key, value] of Object.entries(model.metadata ?? {})) {
    w.message(14, (e) => {
      e.string(1, key);
      e.string(2, value);
    });
  }
  return w.finish();
}
