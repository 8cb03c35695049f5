/**
 * Helpers that get tensor payloads across a thread boundary without needless copies.
 *
 * postMessage clones a typed array by cloning its *whole* underlying buffer, and a transfer
 * detaches the whole buffer too. So a tensor moves cheaply only when its view covers its buffer
 * exactly; a view into a bigger buffer (a Node Buffer pool slice, one output among many in an
 * arena) is first copied into a buffer of its own.
 */
import { TENSOR_ARRAY_CONSTRUCTORS, type TensorData, type TypedArray } from './protocol.js';

/** True when `data` is the only thing in its buffer, so transferring it moves exactly its bytes. */
export function ownsWholeBuffer(data: TypedArray): boolean {
  return data.byteOffset === 0 && data.byteLength === data.buffer.byteLength;
}

export function isShared(data: TypedArray): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && data.buffer instanceof SharedArrayBuffer;
}

/**
 * Prepares an array for postMessage from its owner's side.
 * - shared buffers are posted as they are (the receiver sees the same memory);
 * - a view covering its whole buffer is transferred when `mayTransfer` (the caller gives it up),
 *   else cloned by postMessage (one copy, of exactly its bytes);
 * - a partial view is copied into its own buffer, which is then transferred.
 */
export function prepareForPost<A extends TypedArray>(data: A, mayTransfer: boolean): { data: A; transfer?: ArrayBuffer } {
  if (isShared(data)) return { data };
  if (ownsWholeBuffer(data)) return mayTransfer ? { data, transfer: data.buffer as ArrayBuffer } : { data };
  // slice() allocates a new ArrayBuffer of exactly the view's length.
  const copy = data.slice() as A;
  return { data: copy, transfer: copy.buffer as ArrayBuffer };
}

/** Number of elements a tensor of these dims holds. */
export function elementCount(dims: readonly number[]): number {
  return dims.reduce((n, d) => n * d, 1);
}

/** Checks that a tensor is self-consistent; returns a message saying what is wrong, or undefined. */
export function describeTensorProblem(tensor: TensorData): string | undefined {
  const ctor = TENSOR_ARRAY_CONSTRUCTORS[tensor.type];
  if (!ctor) return `unsupported tensor type "${String(tensor.type)}"`;
  if (!(tensor.data instanceof ctor)) {
    return `type "${tensor.type}" needs a ${ctor.name}, got ${tensor.data?.constructor?.name ?? typeof tensor.data}`;
  }
  if (!tensor.dims.every((d) => Number.isInteger(d) && d >= 0)) return `invalid dims [${tensor.dims.join(', ')}]`;
  const expected = elementCount(tensor.dims);
  if (tensor.data.length !== expected) {
    return `dims [${tensor.dims.join(', ')}] need ${expected} elements, data has ${tensor.data.length}`;
  }
  return undefined;
}
