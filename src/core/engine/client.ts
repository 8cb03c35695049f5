/**
 * The calling side of the inference engine: sends requests to the worker thread that owns every
 * ORT session (worker.ts) and receives outputs as transferred ArrayBuffers, so the caller's
 * event loop (the extension host's) never blocks on inference.
 *
 * Cancellation: onnxruntime-node 1.30 cannot stop a run in progress. Its binding reads only
 * `logSeverityLevel` and `tag` from RunOptions (`terminate` is typed "WebAssembly only"), it builds
 * the native RunOptions inside the synchronous run call, and no handle to them reaches another
 * thread. So an aborted request rejects its caller at once with CancelledError; if it is still
 * queued the worker drops it, and if it is already running the worker finishes it and the
 * client discards the result (the next queued request starts when it ends).
 */
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { CancelledError } from '../errors.js';
import {
  deserializeError,
  type EngineRequest,
  type EngineResponse,
  type EngineResults,
  type ModelSource,
  type RowStateSpec,
  type RowStateUse,
  type SessionInfo,
  type SessionSettings,
  type TensorData,
  type WorkerSettings,
} from './protocol.js';
import { describeTensorProblem, prepareForPost } from './tensors.js';

export type { ModelSource, RowStateSpec, RowStateUse, SessionInfo, TensorData, TensorType } from './protocol.js';

export interface EngineOptions extends WorkerSettings {
  /** The worker entry to start; defaults to worker.js (worker.ts under tsx) next to this module. */
  workerPath?: string;
}

export interface LoadSessionOptions extends SessionSettings {
  /** Rejects this call with CancelledError; the load itself is dropped when nobody else awaits it. */
  signal?: AbortSignal;
  /** Transfer `modelBytes`' buffer to the worker instead of copying it (it is detached afterwards). */
  transferModelBytes?: boolean;
}

export interface RunOptions {
  /** Transfer the feeds' buffers to the worker instead of copying them (they are detached afterwards). */
  transferInputs?: boolean;
  /** The row state (createState) this run reads and appends `rows` rows to. */
  state?: RowStateUse;
}

/** How long a disposed worker may take to release its sessions before it is terminated. */
const DISPOSE_GRACE_MS = 5000;

/** A request as the caller writes it; the connection assigns the id. */
type RequestBody = WithoutId<EngineRequest>;
type WithoutId<R> = R extends unknown ? Omit<R, 'id'> : never;

interface Pending {
  kind: EngineRequest['kind'];
  resolve(result: unknown): void;
  reject(error: Error): void;
}

/** One worker thread and the requests in flight to it. */
class WorkerConnection {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failure: Error | undefined;
  private stopping = false;
  /** Settles once the thread has exited, for whatever reason. */
  readonly exited: Promise<void>;

  constructor(workerPath: string, settings: WorkerSettings, onExit: () => void) {
    this.worker = new Worker(workerPath, { workerData: settings, execArgv: execArgvFor(workerPath) });
    // An idle engine must not keep the process (a CLI run, a test) alive; it is ref'd only
    // while requests are in flight.
    this.worker.unref();
    this.worker.on('message', (response: EngineResponse) => this.settle(response));
    this.worker.on('error', (error) => {
      this.failure ??= error;
    });
    this.worker.on('messageerror', (error) => {
      this.failure ??= error;
      void this.worker.terminate();
    });
    this.exited = new Promise((resolve) => {
      this.worker.once('exit', (code) => {
        this.rejectAll(
          this.stopping
            ? disposedError()
            : new Error(
                `The inference worker stopped unexpectedly (${this.failure?.message ?? `exit code ${code}`}). ` +
                  'The next request starts a new worker; models must be loaded again.',
              ),
        );
        onExit();
        resolve();
      });
    });
  }

  /** Sends a request; `id` lets the caller cancel it while it is still queued. */
  request<B extends RequestBody>(body: B, transfer: ArrayBuffer[] = []): { id: number; result: Promise<EngineResults[B['kind']]> } {
    const id = this.nextId++;
    const result = new Promise<EngineResults[B['kind']]>((resolve, reject) => {
      if (this.pending.size === 0) this.worker.ref();
      this.pending.set(id, { kind: body.kind, resolve: resolve as (result: unknown) => void, reject });
      try {
        this.worker.postMessage({ ...body, id }, transfer);
      } catch (error) {
        // e.g. DataCloneError for a detached buffer: nothing was sent.
        this.remove(id);
        reject(error);
      }
    });
    return { id, result };
  }

  cancel(id: number): void {
    if (this.pending.has(id)) this.worker.postMessage({ kind: 'cancel', id });
  }

  /** Rejects everything in flight, lets the worker release its sessions and end; terminates it if it does not. */
  dispose(): Promise<void> {
    if (!this.stopping) {
      this.stopping = true;
      this.rejectAll(disposedError());
      // Keep the process alive until the thread is gone, or an awaited dispose() would never settle.
      this.worker.ref();
      this.worker.postMessage({ kind: 'dispose', id: this.nextId++ });
      const timer = setTimeout(() => void this.worker.terminate(), DISPOSE_GRACE_MS);
      timer.unref();
      void this.exited.then(() => clearTimeout(timer));
    }
    return this.exited;
  }

  private settle(response: EngineResponse): void {
    const pending = this.remove(response.id);
    if (!pending) return; // cancelled or disposed meanwhile: the result is discarded
    if (response.kind === 'error') pending.reject(deserializeError(response.error));
    else if (response.request !== pending.kind) pending.reject(new Error(`Engine protocol error: ${pending.kind} request ${response.id} got a ${response.request} result.`));
    else pending.resolve(response.result);
  }

  private remove(id: number): Pending | undefined {
    const pending = this.pending.get(id);
    if (pending) {
      this.pending.delete(id);
      if (this.pending.size === 0) this.worker.unref();
    }
    return pending;
  }

  private rejectAll(error: Error): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    this.worker.unref();
    for (const pending of all) pending.reject(error);
  }
}

/** A session the client asked for: loading or loaded. */
interface SessionEntry {
  connection: WorkerConnection;
  requestId: number;
  loaded: Promise<SessionInfo>;
  settled: boolean;
  /** Callers still waiting for the load (not aborted). */
  waiters: number;
}

/**
 * Runs ONNX models off the calling thread. One worker thread holds every session; requests are
 * served in order. Create it once per extension/CLI run and dispose it at the end.
 */
export class InferenceEngine {
  private connection: WorkerConnection | undefined;
  private readonly sessions = new Map<string, SessionEntry>();
  private disposing: Promise<void> | undefined;

  private constructor(
    private readonly settings: WorkerSettings,
    private readonly workerPath: string,
  ) {}

  /** Creates the engine and starts its worker, so the first model load does not wait for the thread. */
  static create(options: EngineOptions = {}): InferenceEngine {
    const { workerPath = defaultWorkerPath(), ...settings } = options;
    const engine = new InferenceEngine(settings, workerPath);
    engine.connect();
    return engine;
  }

  /**
   * Loads a model into the worker under `key`. A key names one model: loading a key the engine
   * already has (or is loading) reuses that session and sends nothing.
   */
  async loadSession(key: string, source: ModelSource, options: LoadSessionOptions = {}): Promise<SessionInfo> {
    const { signal, transferModelBytes = false, ...settings } = options;
    if (signal?.aborted) throw new CancelledError();
    const entry = this.sessions.get(key) ?? this.startLoad(key, source, settings, transferModelBytes);
    entry.waiters++;
    return abortable(entry.loaded, signal, () => this.abandonLoad(key, entry));
  }

  /** True when the session is loaded or loading (loadSession for it would reuse it). */
  hasSession(key: string): boolean {
    return this.sessions.has(key);
  }

  /**
   * Runs a loaded model. Only the outputs named in `fetches` are computed and returned; their
   * buffers arrive transferred (each output owns its whole ArrayBuffer).
   */
  async run(
    key: string,
    feeds: Record<string, TensorData>,
    fetches: readonly string[],
    signal?: AbortSignal,
    options: RunOptions = {},
  ): Promise<Record<string, TensorData>> {
    if (signal?.aborted) throw new CancelledError();
    const wanted = [...new Set(fetches)];
    if (wanted.length === 0) throw new Error(`Running model "${key}": no outputs requested.`);
    const sent: Record<string, TensorData> = {};
    const transfer = new Set<ArrayBuffer>();
    for (const [name, tensor] of Object.entries(feeds)) {
      const problem = describeTensorProblem(tensor);
      if (problem) throw new Error(`Input "${name}" of model "${key}": ${problem}.`);
      const prepared = prepareForPost(tensor.data, options.transferInputs ?? false);
      sent[name] = { ...tensor, data: prepared.data } as TensorData;
      if (prepared.transfer) transfer.add(prepared.transfer);
    }
    const connection = this.connect();
    const { id, result } = connection.request({ kind: 'run', key, feeds: sent, fetches: wanted, state: options.state }, [...transfer]);
    return abortable(result, signal, () => connection.cancel(id));
  }

  /**
   * Allocates rows the worker keeps between runs (RowStateSpec), e.g. a KV cache that then never
   * crosses the thread boundary. Returns a Disposable that frees them; creating an existing key
   * replaces it.
   */
  async createState(key: string, spec: RowStateSpec): Promise<{ key: string; dispose(): Promise<void> }> {
    await this.connect().request({ kind: 'createState', key, spec }).result;
    return { key, dispose: () => this.dropState(key) };
  }

  /** Frees a row state in the worker (nothing to do when the worker is gone: it went with it). */
  async dropState(key: string): Promise<void> {
    if (!this.connection || this.disposing) return;
    await this.connection.request({ kind: 'dropState', key }).result;
  }

  /** Frees a session in the worker (after the requests queued before this call). */
  async releaseSession(key: string): Promise<void> {
    this.sessions.delete(key);
    if (!this.connection || this.disposing) return;
    await this.connection.request({ kind: 'release', key }).result;
  }

  /**
   * Rejects all pending work with CancelledError and ends the worker thread (after it releases
   * its sessions). Later calls fail. The promise settles when the thread is gone.
   */
  dispose(): Promise<void> {
    if (!this.disposing) {
      this.sessions.clear();
      this.disposing = this.connection?.dispose() ?? Promise.resolve();
      this.connection = undefined;
    }
    return this.disposing;
  }

  /** The live worker, starting one if there is none (first use, or after a crash). */
  private connect(): WorkerConnection {
    if (this.disposing) throw new Error('The inference engine has been disposed.');
    if (!this.connection) {
      const connection = new WorkerConnection(this.workerPath, this.settings, () => {
        if (this.connection !== connection) return;
        // The sessions died with the thread.
        this.connection = undefined;
        this.sessions.clear();
      });
      this.connection = connection;
    }
    return this.connection;
  }

  private startLoad(key: string, source: ModelSource, settings: SessionSettings, transferModelBytes: boolean): SessionEntry {
    const connection = this.connect();
    let sent: ModelSource = source;
    const transfer: ArrayBuffer[] = [];
    if ('modelBytes' in source) {
      const prepared = prepareForPost(source.modelBytes, transferModelBytes);
      sent = { ...source, modelBytes: prepared.data };
      if (prepared.transfer) transfer.push(prepared.transfer);
    }
    const { id, result } = connection.request({ kind: 'loadSession', key, source: sent, settings }, transfer);
    const entry: SessionEntry = { connection, requestId: id, loaded: result, settled: false, waiters: 0 };
    this.sessions.set(key, entry);
    result.then(
      () => {
        entry.settled = true;
      },
      () => {
        entry.settled = true;
        // A failed load leaves nothing to reuse; the next loadSession tries again.
        if (this.sessions.get(key) === entry) this.sessions.delete(key);
      },
    );
    return entry;
  }

  /** The last caller waiting for a load gave up: drop the load if queued, free it if it runs anyway. */
  private abandonLoad(key: string, entry: SessionEntry): void {
    entry.waiters--;
    if (entry.waiters > 0 || entry.settled || this.sessions.get(key) !== entry) return;
    this.sessions.delete(key);
    entry.connection.cancel(entry.requestId);
    // Served after the load (FIFO), so it frees the session if the load had already started.
    entry.connection.request({ kind: 'release', key }).result.catch(() => undefined);
  }
}

/**
 * Bundled (esbuild), this module lives in out/extension.js or out/cli.js and the worker bundle is
 * out/worker.js beside it. Run from source under tsx, this file is client.ts and worker.ts is beside it.
 */
function defaultWorkerPath(): string {
  return path.join(__dirname, __filename.endsWith('.ts') ? 'worker.ts' : 'worker.js');
}

/**
 * A TypeScript worker needs tsx inside the worker thread. `--import tsx` does not work there on
 * Node 20 (the ESM hooks it registers do not apply to the worker's entry: ERR_UNKNOWN_FILE_EXTENSION),
 * but tsx's synchronous CommonJS hook does. Resolved from here so the cwd does not matter; through
 * createRequire so that bundlers leave this dev-only dependency alone.
 */
function execArgvFor(workerPath: string): string[] | undefined {
  return workerPath.endsWith('.ts') ? ['--require', createRequire(__filename).resolve('tsx/cjs')] : undefined;
}

function disposedError(): CancelledError {
  return new CancelledError('The inference engine was disposed.');
}

/** `promise`, except that it rejects with CancelledError as soon as `signal` aborts (then calls `onAbort`). */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined, onAbort: () => void): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const abort = (): void => {
      reject(new CancelledError());
      onAbort();
    };
    signal.addEventListener('abort', abort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', abort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', abort);
        reject(error);
      },
    );
  });
}
