/**
 * Messages between the inference engine's client (the calling thread) and its worker thread.
 *
 * Every request carries an id and gets exactly one response with that id: `ok` with the result,
 * or `error` with a serialised error. The one exception is `cancel`, a notice that asks the
 * worker to drop a request it has not started yet (which then gets an error response saying so).
 *
 * Tensors cross the thread boundary as `TensorData`: plain typed arrays. Outputs always arrive
 * with their buffers transferred; inputs are transferred when the caller gives them up.
 */
import { CancelledError, UserError } from '../errors.js';

/** The typed array that holds each element type we exchange with ORT. */
export interface TensorArrays {
  float32: Float32Array;
  float64: Float64Array;
  /** IEEE half-precision bits (Node 20 has no Float16Array). */
  float16: Uint16Array;
  int64: BigInt64Array;
  int32: Int32Array;
  int8: Int8Array;
  uint8: Uint8Array;
  /** One byte per element, 0 or 1. */
  bool: Uint8Array;
}

export type TensorType = keyof TensorArrays;

/** A dense, row-major tensor; `type` tells which typed array `data` is. */
export type TensorData = {
  [T in TensorType]: { type: T; dims: readonly number[]; data: TensorArrays[T] };
}[TensorType];

export type TypedArray = TensorData['data'];

/** The typed-array constructor for each type, to check payloads and rebuild views. */
export const TENSOR_ARRAY_CONSTRUCTORS: { readonly [T in TensorType]: new (length: number) => TensorArrays[T] } = {
  float32: Float32Array,
  float64: Float64Array,
  float16: Uint16Array,
  int64: BigInt64Array,
  int32: Int32Array,
  int8: Int8Array,
  uint8: Uint8Array,
  bool: Uint8Array,
};

export function isTensorType(type: string): type is TensorType {
  return Object.prototype.hasOwnProperty.call(TENSOR_ARRAY_CONSTRUCTORS, type);
}

/** Engine-wide settings, fixed when the worker starts (sent as `workerData`). */
export interface WorkerSettings {
  /** intra-op threads per session; undefined means one per physical core. */
  threads?: number;
  /** ORT execution provider names in order of preference; undefined means ['cpu']. */
  executionProviders?: string[];
}

/** Per-session overrides of the engine-wide settings. */
export interface SessionSettings extends WorkerSettings {
  /**
   * Extra ORT session config entries, by their dotted key from onnxruntime_session_options_config_keys.h
   * (e.g. `'session.disable_prepacking': '1'`). Applied after ours, so they win.
   */
  config?: Record<string, string>;
}

/** Where a model comes from. */
export type ModelSource =
  | {
      /** A serialised ONNX model. */
      modelBytes: Uint8Array;
      /** Folder that the model's relative external-data locations are resolved against. */
      externalDataDir?: string;
    }
  | {
      /** An ONNX file; its external data is resolved against the file's own folder. */
      modelPath: string;
    };

/** What the worker reports about a loaded session. */
export interface SessionInfo {
  inputNames: string[];
  outputNames: string[];
  /** True when the worker already had a session under this key and reused it. */
  reused: boolean;
  /** Time the worker spent creating the session (0 when reused). */
  loadMs: number;
}

export interface LoadSessionRequest {
  kind: 'loadSession';
  id: number;
  key: string;
  source: ModelSource;
  settings: SessionSettings;
}

export interface RunRequest {
  kind: 'run';
  id: number;
  key: string;
  feeds: Record<string, TensorData>;
  /** Output names wanted; only these are computed and returned. */
  fetches: string[];
  /** A row state the run reads and appends to (see RowStateSpec). */
  state?: RowStateUse;
}

/**
 * Rows the worker keeps between runs, e.g. a decoder's KV cache: they never cross the thread
 * boundary, and ORT writes each run's new rows straight into their place (a pre-allocated output).
 * For each slot, a run is fed the rows so far as `input` ([rows, width], when the session has that
 * input) and the rows of `output` ([new rows, width]) are appended; slot outputs are not returned.
 */
export interface RowStateSpec {
  slots: { input: string; output: string }[];
  /** Elements per row. */
  width: number;
  /** Most rows a slot holds (allocated up front, so appending never copies). */
  capacity: number;
  type: 'float32' | 'float16';
}

export interface RowStateUse {
  key: string;
  /** Rows this run appends to every slot. */
  rows: number;
}

export interface CreateStateRequest {
  kind: 'createState';
  id: number;
  key: string;
  spec: RowStateSpec;
}

export interface DropStateRequest {
  kind: 'dropState';
  id: number;
  key: string;
}

export interface ReleaseRequest {
  kind: 'release';
  id: number;
  key: string;
}

/** Drop every queued request, release every session, and let the worker thread end. */
export interface DisposeRequest {
  kind: 'dispose';
  id: number;
}

export type EngineRequest = LoadSessionRequest | RunRequest | ReleaseRequest | CreateStateRequest | DropStateRequest | DisposeRequest;

/** Asks the worker to drop request `id` if it is still queued; no response of its own. */
export interface CancelNotice {
  kind: 'cancel';
  id: number;
}

export type ClientMessage = EngineRequest | CancelNotice;

/** What each request kind resolves to. */
export interface EngineResults {
  loadSession: SessionInfo;
  run: Record<string, TensorData>;
  release: null;
  createState: null;
  dropState: null;
  dispose: null;
}

export type OkResponse = {
  [K in keyof EngineResults]: { kind: 'ok'; id: number; request: K; result: EngineResults[K] };
}[keyof EngineResults];

export interface ErrorResponse {
  kind: 'error';
  id: number;
  error: SerializedError;
}

export type EngineResponse = OkResponse | ErrorResponse;

/** An Error flattened for postMessage, keeping what our error classes need to be rebuilt. */
export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  /** UserError's file and hint. */
  file?: string;
  hint?: string;
}

export function serializeError(error: unknown): SerializedError {
  if (error instanceof UserError) {
    return { name: error.name, message: error.message, stack: error.stack, file: error.file, hint: error.hint };
  }
  if (error instanceof Error) return { name: error.name, message: error.message, stack: error.stack };
  return { name: 'Error', message: String(error) };
}

/**
 * Rebuilds an error on the receiving side so `instanceof UserError` / `CancelledError` keep working
 * across the thread hop. The error gets the caller's stack (where the request was made, the more
 * useful one); the worker's stack is kept as `workerStack` for logs.
 */
export function deserializeError(e: SerializedError): Error {
  let error: Error;
  if (e.name === 'UserError') {
    // The message is already formatted with file and hint; attach them without formatting again.
    error = Object.assign(new UserError(e.message), { file: e.file, hint: e.hint });
  } else if (e.name === 'CancelledError') {
    error = new CancelledError(e.message);
  } else {
    error = new Error(e.message);
    error.name = e.name;
  }
  if (e.stack) (error as Error & { workerStack?: string }).workerStack = e.stack;
  return error;
}
