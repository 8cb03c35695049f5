/**
 * The inference worker: the one thread that owns every ORT session.
 *
 * `InferenceSession.create` and `session.run` block their thread for hundreds of milliseconds,
 * so they run here, never on the extension host's thread. Requests are served one at a time in
 * arrival order (ORT already uses every core inside one run; overlapping runs would only fight
 * for them). Bundled by esbuild to `out/worker.js`; started by `client.ts`.
 */
import * as path from 'node:path';
import { isMainThread, parentPort, workerData, type MessagePort } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { CancelledError, UserError } from '../errors.js';
import { physicalCoreCount } from './cpus.js';
import {
  isTensorType,
  serializeError,
  type ClientMessage,
  type EngineRequest,
  type EngineResponse,
  type LoadSessionRequest,
  type RowStateSpec,
  type RunRequest,
  type SessionInfo,
  type SessionSettings,
  type TensorData,
  type TypedArray,
  type WorkerSettings,
} from './protocol.js';
import { isShared, ownsWholeBuffer } from './tensors.js';

/**
 * ORT session config keys (onnxruntime_session_options_config_keys.h). onnxruntime-node's
 * `extra` option is flattened into dotted keys and passed to AddConfigEntry, so a flat object
 * with dotted keys is exactly what ORT receives; every value must be a string.
 */
const CONFIG = {
  /** Idle pool threads sleep instead of spinning: several spinning pools (one per session) cost 2–3×. */
  intraOpSpinning: 'session.intra_op.allow_spinning',
  interOpSpinning: 'session.inter_op.allow_spinning',
  /** Where relative external-data locations resolve when the model is created from a buffer. */
  externalDataFolder: 'session.model_external_initializers_file_folder_path',
} as const;

type QueuedRequest = Exclude<EngineRequest, { kind: 'dispose' }>;

class InferenceWorker {
  private readonly sessions = new Map<string, ort.InferenceSession>();
  private readonly states = new Map<string, RowState>();
  private readonly queue: QueuedRequest[] = [];
  /** The loop serving the queue, while it runs. */
  private draining: Promise<void> | undefined;
  private disposed = false;
  private defaultThreads: number | undefined;

  constructor(
    private readonly port: MessagePort,
    private readonly defaults: WorkerSettings,
  ) {}

  onMessage(message: ClientMessage): void {
    switch (message.kind) {
      case 'cancel':
        this.cancel(message.id);
        return;
      case 'dispose':
        void this.dispose(message.id);
        return;
      default:
        if (this.disposed) {
          this.replyError(message.id, new CancelledError('The inference engine was disposed.'));
          return;
        }
        this.queue.push(message);
        this.drain();
    }
  }

  private drain(): void {
    if (this.draining) return;
    this.draining = (async () => {
      for (;;) {
        // Turn the event loop before each job: while the previous job blocked this thread,
        // 'cancel' and 'dispose' messages piled up in the port, and they must be seen first.
        await new Promise((resolve) => setImmediate(resolve));
        const request = this.queue.shift();
        if (!request) return;
        await this.serve(request);
      }
    })().finally(() => {
      this.draining = undefined;
    });
  }

  private async serve(request: QueuedRequest): Promise<void> {
    try {
      switch (request.kind) {
        case 'loadSession':
          this.reply({ kind: 'ok', id: request.id, request: 'loadSession', result: await this.load(request) });
          break;
        case 'run': {
          const { outputs, transfer } = await this.run(request);
          this.reply({ kind: 'ok', id: request.id, request: 'run', result: outputs }, transfer);
          break;
        }
        case 'release':
          await this.sessions.get(request.key)?.release();
          this.sessions.delete(request.key);
          this.reply({ kind: 'ok', id: request.id, request: 'release', result: null });
          break;
        case 'createState':
          this.states.set(request.key, new RowState(request.key, request.spec));
          this.reply({ kind: 'ok', id: request.id, request: 'createState', result: null });
          break;
        case 'dropState':
          this.states.delete(request.key);
          this.reply({ kind: 'ok', id: request.id, request: 'dropState', result: null });
          break;
      }
    } catch (error) {
      this.replyError(request.id, error);
    }
  }

  private cancel(id: number): void {
    const index = this.queue.findIndex((r) => r.id === id);
    if (index < 0) return; // already running or done: the client discards its result
    const [request] = this.queue.splice(index, 1);
    this.replyError(request.id, new CancelledError());
  }

  private async dispose(id: number): Promise<void> {
    this.disposed = true;
    for (const request of this.queue.splice(0)) {
      this.replyError(request.id, new CancelledError('The inference engine was disposed.'));
    }
    // A job already inside ORT cannot be stopped; its session must outlive it.
    await this.draining;
    for (const session of this.sessions.values()) await session.release();
    this.sessions.clear();
    this.states.clear();
    this.reply({ kind: 'ok', id, request: 'dispose', result: null });
    // With the port closed nothing keeps this thread's event loop alive, so the worker exits.
    this.port.close();
  }

  private async load(request: LoadSessionRequest): Promise<SessionInfo> {
    const existing = this.sessions.get(request.key);
    if (existing) return describeSession(existing, true, 0);

    const { source } = request;
    const externalDataDir = 'modelBytes' in source && source.externalDataDir ? path.resolve(source.externalDataDir) : undefined;
    const options = this.sessionOptions(request.settings, externalDataDir);
    const started = performance.now();
    let session: ort.InferenceSession;
    try {
      session =
        'modelPath' in source
          ? await ort.InferenceSession.create(source.modelPath, options)
          : await ort.InferenceSession.create(source.modelBytes, options);
    } catch (error) {
      const file = 'modelPath' in source ? source.modelPath : externalDataDir;
      throw new UserError(`Could not load model "${request.key}": ${errorMessage(error)}`, file);
    }
    this.sessions.set(request.key, session);
    return describeSession(session, false, performance.now() - started);
  }

  private sessionOptions(settings: SessionSettings, externalDataDir: string | undefined): ort.InferenceSession.SessionOptions {
    const config: Record<string, string> = {
      [CONFIG.intraOpSpinning]: '0',
      [CONFIG.interOpSpinning]: '0',
    };
    if (externalDataDir) config[CONFIG.externalDataFolder] = externalDataDir;
    Object.assign(config, settings.config);
    return {
      executionProviders: settings.executionProviders ?? this.defaults.executionProviders ?? ['cpu'],
      intraOpNumThreads: settings.threads || this.defaults.threads || this.physicalCores(),
      // Our graphs are one chain of ops; parallelism lives inside each op.
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      extra: config,
    };
  }

  private physicalCores(): number {
    this.defaultThreads ??= physicalCoreCount();
    return this.defaultThreads;
  }

  private async run(request: RunRequest): Promise<{ outputs: Record<string, TensorData>; transfer: ArrayBuffer[] }> {
    const { key } = request;
    const session = this.sessions.get(key);
    if (!session) throw new Error(`No session "${key}" is loaded; call loadSession first.`);
    const state = request.state && this.states.get(request.state.key);
    if (request.state && !state) throw new Error(`No row state "${request.state.key}"; call createState first.`);
    const stateFeeds = state ? state.inputs(session.inputNames) : {};
    const stateFetches = state ? state.outputs(request.state!.rows, session.outputNames, key) : {};
    checkNames(key, 'input', [...Object.keys(request.feeds), ...Object.keys(stateFeeds)], session.inputNames, true);
    checkNames(key, 'output', request.fetches, session.outputNames, false);

    const feeds: Record<string, ort.Tensor> = { ...stateFeeds };
    for (const [name, tensor] of Object.entries(request.feeds)) {
      // onnxruntime-node rejects SharedArrayBuffer-backed data ("Invalid argument").
      const data = isShared(tensor.data) ? tensor.data.slice() : tensor.data;
      feeds[name] = new ort.Tensor(tensor.type, data, tensor.dims);
    }
    // null: ORT allocates the output; a tensor: ORT writes into it (the state's next rows).
    const fetches: Record<string, ort.Tensor | null> = { ...stateFetches };
    for (const name of request.fetches) fetches[name] ??= null;

    let results: ort.InferenceSession.ReturnType;
    try {
      results = await session.run(feeds, fetches);
    } catch (error) {
      throw new Error(`Running model "${key}" failed: ${errorMessage(error)}`);
    }
    state?.appended(request.state!.rows);

    const outputs: Record<string, TensorData> = {};
    const transfer = new Set<ArrayBuffer>();
    for (const name of request.fetches) {
      const value = results[name];
      if (!(value instanceof ort.Tensor) || !isTensorType(value.type)) {
        throw new Error(`Model "${key}" output "${name}" is a ${value instanceof ort.Tensor ? value.type : 'non-tensor'} value, which the engine does not return.`);
      }
      let data = value.data as TypedArray;
      // Transferring detaches the whole buffer; give each output a buffer of its own first.
      if (!ownsWholeBuffer(data) || isShared(data)) data = data.slice();
      outputs[name] = { type: value.type, dims: [...value.dims], data } as TensorData;
      transfer.add(data.buffer as ArrayBuffer);
    }
    return { outputs, transfer: [...transfer] };
  }

  private reply(response: EngineResponse, transfer: ArrayBuffer[] = []): void {
    this.port.postMessage(response, transfer);
  }

  private replyError(id: number, error: unknown): void {
    this.reply({ kind: 'error', id, error: serializeError(error) });
  }
}

/** The rows of one RowStateSpec, allocated once at full capacity. */
class RowState {
  private readonly buffers: (Float32Array | Uint16Array)[];
  private length = 0;

  constructor(
    private readonly key: string,
    private readonly spec: RowStateSpec,
  ) {
    const size = spec.capacity * spec.width;
    this.buffers = spec.slots.map(() => (spec.type === 'float16' ? new Uint16Array(size) : new Float32Array(size)));
  }

  /** The rows so far ([length, width] views, no copy) for every slot input the session takes. */
  inputs(sessionInputs: readonly string[]): Record<string, ort.Tensor> {
    const feeds: Record<string, ort.Tensor> = {};
    this.spec.slots.forEach((slot, i) => {
      if (sessionInputs.includes(slot.input)) feeds[slot.input] = this.view(i, 0, this.length);
    });
    return feeds;
  }

  /** Where a run writes its `rows` new rows: the views after the rows so far, one per slot output. */
  outputs(rows: number, sessionOutputs: readonly string[], model: string): Record<string, ort.Tensor> {
    const { capacity } = this.spec;
    if (!Number.isInteger(rows) || rows < 0) throw new Error(`Row state "${this.key}": cannot append ${rows} rows.`);
    if (this.length + rows > capacity) {
      throw new Error(`Row state "${this.key}" holds ${capacity} rows; it has ${this.length} and this run would add ${rows}.`);
    }
    const fetches: Record<string, ort.Tensor> = {};
    this.spec.slots.forEach((slot, i) => {
      if (!sessionOutputs.includes(slot.output)) throw new Error(`Model "${model}" has no output "${slot.output}" for row state "${this.key}".`);
      fetches[slot.output] = this.view(i, this.length, rows);
    });
    return fetches;
  }

  appended(rows: number): void {
    this.length += rows;
  }

  private view(slot: number, from: number, rows: number): ort.Tensor {
    const { width, type } = this.spec;
    return new ort.Tensor(type, this.buffers[slot]!.subarray(from * width, (from + rows) * width), [rows, width]);
  }
}

function describeSession(session: ort.InferenceSession, reused: boolean, loadMs: number): SessionInfo {
  return { inputNames: [...session.inputNames], outputNames: [...session.outputNames], reused, loadMs };
}

/** Clear errors for misnamed feeds and fetches (ORT's say less, or nothing for unused feeds). */
function checkNames(key: string, what: 'input' | 'output', given: string[], known: readonly string[], needAll: boolean): void {
  const unknown = given.filter((name) => !known.includes(name));
  if (unknown.length > 0) {
    throw new Error(`Model "${key}" has no ${what} ${unknown.map((n) => `"${n}"`).join(', ')}; its ${what}s are: ${known.join(', ')}.`);
  }
  const missing = needAll ? known.filter((name) => !given.includes(name)) : [];
  if (missing.length > 0) {
    throw new Error(`Model "${key}" needs ${what} ${missing.map((n) => `"${n}"`).join(', ')}.`);
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

if (!isMainThread && parentPort) {
  const port = parentPort;
  const worker = new InferenceWorker(port, (workerData ?? {}) as WorkerSettings);
  port.on('message', (message: ClientMessage) => worker.onMessage(message));
}
