/**
 * A Hugging Face model folder (SPEC §1.1, §1.3, §1.4): config.json, optional
 * preprocessor_config.json, and safetensors weights in one file or in shards with an index.
 *
 * Opening reads the configs and every weight file's header, so a folder that cannot work fails at
 * once with one clear message; tensor data is read only when a model asks for it. Pickle weights
 * (pytorch_model.bin, *.pt, …) are refused outright: unpickling can run arbitrary code.
 *
 * Tensor descriptors carry the *real* path of the file holding the bytes. Hugging Face cache
 * snapshots are folders of symlinks into ../../blobs, and ORT's external-data loader refuses
 * paths that leave the model folder, so the graph builder needs the resolved file.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { UserError, check } from '../errors.js';
import {
  SafetensorsFile, formatShape, fsUserError,
  type StoredArray, type TensorDescriptor,
} from './safetensors.js';

export const CONFIG_FILE = 'config.json';
export const PREPROCESSOR_CONFIG_FILE = 'preprocessor_config.json';
export const SINGLE_WEIGHTS_FILE = 'model.safetensors';
export const WEIGHTS_INDEX_FILE = 'model.safetensors.index.json';

/** Bump when the identity() recipe changes, so caches keyed by it are rebuilt. */
const IDENTITY_VERSION = 'checkpoint-identity-v1';

const MODEL_FOLDER_HINT =
  'Choose the folder that contains config.json and the .safetensors weights (as written by save_pretrained or downloaded from the Hugging Face Hub).';
const REDOWNLOAD_HINT = 'The download is probably incomplete: download the model again.';
const MISMATCH_HINT = 'Check that config.json and the weights come from the same model.';

/** File names that are pickle checkpoints; recognised only to explain why they are refused. */
export function isPickleWeights(name: string): boolean {
  return /^pytorch_model.*\.bin$/.test(name) || name === 'pytorch_model.bin.index.json' || /\.(pt|pth|ckpt|pkl|pickle)$/.test(name);
}

/** One weight file of the checkpoint. */
interface WeightFile {
  /** Inside the (resolved) model folder, as the user knows it; used in messages. */
  readonly displayPath: string;
  /** After following symlinks (HF cache blobs); handed to consumers that read the bytes directly. */
  readonly realPath: string;
  readonly safetensors: SafetensorsFile;
}

type JsonObject = Readonly<Record<string, unknown>>;

export class Checkpoint {
  private readonly used = new Set<string>();

  private constructor(
    /** The model folder with symlinks resolved. */
    readonly dir: string,
    /** Parsed config.json. */
    readonly config: JsonObject,
    /** Parsed preprocessor_config.json, when the folder has one. */
    readonly preprocessorConfig: JsonObject | undefined,
    /** The file that lists the tensors: model.safetensors, the index, or the single *.safetensors. */
    readonly weightsSource: string,
    private readonly weightFiles: readonly WeightFile[],
    /** Tensor name → its weight file, in file (or index) order. */
    private readonly tensorFiles: ReadonlyMap<string, WeightFile>,
    /** The exact bytes that define the model, for identity(). */
    private readonly definingTexts: readonly string[],
  ) {}

  /** Opens a model folder; every problem with it is a UserError naming the file at fault. */
  static async open(folder: string): Promise<Checkpoint> {
    const dir = await resolveModelFolder(folder);

    const configPath = path.join(dir, CONFIG_FILE);
    const configText = await readTextIfExists(configPath);
    check(configText !== undefined, 'is not a Hugging Face model folder: it has no config.json.', dir, MODEL_FOLDER_HINT);
    const config = parseJsonObject(configText, configPath);

    const preprocessorPath = path.join(dir, PREPROCESSOR_CONFIG_FILE);
    const preprocessorText = await readTextIfExists(preprocessorPath);
    const preprocessorConfig = preprocessorText === undefined ? undefined : parseJsonObject(preprocessorText, preprocessorPath);

    const weights = await openWeights(dir);
    return new Checkpoint(
      dir, config, preprocessorConfig, weights.source, weights.files, weights.tensorFiles,
      [configText, preprocessorText ?? '', weights.indexText ?? ''],
    );
  }

  /** config.json's `model_type`, when it is a string; callers decide what unknown types mean. */
  get modelType(): string | undefined {
    const value = this.config['model_type'];
    return typeof value === 'string' ? value : undefined;
  }

  /** Real paths of the weight files. */
  weightFilePaths(): string[] {
    return this.weightFiles.map((f) => f.realPath);
  }

  /**
   * Parses another JSON file of the folder (e.g. tokenizer_config.json, generation_config.json);
   * undefined when the folder has no such file.
   */
  async readJson(name: string): Promise<unknown> {
    const text = await this.readText(name);
    return text === undefined ? undefined : parseJson(text, path.join(this.dir, name));
  }

  /** Another text file of the folder (e.g. merges.txt); undefined when the folder has no such file. */
  async readText(name: string): Promise<string | undefined> {
    const file = path.join(this.dir, name);
    if (path.isAbsolute(name) || path.relative(this.dir, file).startsWith('..')) {
      throw new Error(`expected a file name inside the model folder, got '${name}'`);
    }
    return readTextIfExists(file);
  }

  /** Tensor names in file (or index) order. */
  tensorNames(): string[] {
    return [...this.tensorFiles.keys()];
  }

  /** Whether the checkpoint has tensor `name`; does not count as using it. */
  has(name: string): boolean {
    return this.tensorFiles.has(name);
  }

  /** Descriptor of tensor `name` with `file` = the real path of the file holding it; marks it used. */
  describe(name: string): TensorDescriptor {
    const weightFile = this.tensorFiles.get(name);
    check(weightFile, `has no tensor '${name}'; the checkpoint does not match its config.json.`, this.weightsSource, MISMATCH_HINT);
    this.used.add(name);
    return { ...weightFile.safetensors.describe(name), file: weightFile.realPath };
  }

  /**
   * Descriptor of `name` after checking it has exactly `shape` (the shape config.json implies).
   * A mismatch is a UserError naming the file, the tensor and both shapes.
   */
  expectShape(name: string, shape: readonly number[]): TensorDescriptor {
    const descriptor = this.describe(name);
    const same = descriptor.shape.length === shape.length && descriptor.shape.every((d, i) => d === shape[i]);
    check(same,
      `tensor '${name}' has shape ${formatShape(descriptor.shape)} but config.json implies ${formatShape(shape)}; the checkpoint does not match its config.json.`,
      this.displayPath(name), MISMATCH_HINT);
    return descriptor;
  }

  async readRaw(name: string): Promise<Uint8Array> {
    return this.fileOf(name).readRaw(name);
  }

  async readRawRange(name: string, byteStart: number, byteLength: number): Promise<Uint8Array> {
    return this.fileOf(name).readRawRange(name, byteStart, byteLength);
  }

  /** Elements in their stored type (F16/BF16 as Uint16Array bits); see SafetensorsFile.readStored. */
  async readStored(name: string): Promise<StoredArray> {
    return this.fileOf(name).readStored(name);
  }

  /** The tensor decoded to float32 (F16/BF16 exactly). */
  async readF32(name: string): Promise<Float32Array> {
    return this.fileOf(name).readF32(name);
  }

  async readI64(name: string): Promise<BigInt64Array> {
    return this.fileOf(name).readI64(name);
  }

  async readI32(name: string): Promise<Int32Array> {
    return this.fileOf(name).readI32(name);
  }

  /**
   * A view that finds canonical names under optional wrapper prefixes, tried in order
   * (SPEC §1.4): e.g. `withPrefixes(['vit.', ''])` finds `embeddings.cls_token` stored as
   * `vit.embeddings.cls_token` in ViTForImageClassification and as is in ViTModel.
   */
  withPrefixes(prefixes: readonly string[]): CheckpointView {
    return new CheckpointView(this, prefixes);
  }

  /** Tensors nothing has described or read so far (e.g. `*.position_ids` buffers), to report. */
  unusedTensorNames(): string[] {
    return this.tensorNames().filter((name) => !this.used.has(name));
  }

  /**
   * A stable key for caches of things derived from this checkpoint (converted graphs): it changes
   * when a weight file is replaced or touched (real path, size, mtime) or a config changes.
   * Computed once: every input was read when the folder was opened.
   */
  identity(): string {
    this.identityKey ??= this.computeIdentity();
    return this.identityKey;
  }

  private identityKey: string | undefined;

  private computeIdentity(): string {
    const hash = createHash('sha256');
    const add = (text: string): void => {
      hash.update(`${Buffer.byteLength(text)}:`).update(text); // length-prefixed: no ambiguous concatenations
    };
    add(IDENTITY_VERSION);
    for (const f of this.weightFiles) {
      add(f.realPath);
      add(String(f.safetensors.fileSize));
      add(String(f.safetensors.mtimeMs));
    }
    for (const text of this.definingTexts) add(text);
    return hash.digest('hex');
  }

  /** The weight file holding `name`, as the user sees it (for messages). */
  displayPath(name: string): string {
    return this.tensorFiles.get(name)?.displayPath ?? this.weightsSource;
  }

  private fileOf(name: string): SafetensorsFile {
    this.describe(name); // validates the name and marks it used
    return this.tensorFiles.get(name)!.safetensors;
  }
}

/** Canonical tensor names resolved under a list of optional prefixes; see Checkpoint.withPrefixes. */
export class CheckpointView {
  constructor(
    readonly checkpoint: Checkpoint,
    readonly prefixes: readonly string[],
  ) {}

  /** The name actually stored for `canonical`, or undefined. */
  resolve(canonical: string): string | undefined {
    for (const prefix of this.prefixes) {
      if (this.checkpoint.has(prefix + canonical)) return prefix + canonical;
    }
    return undefined;
  }

  has(canonical: string): boolean {
    return this.resolve(canonical) !== undefined;
  }

  /** Descriptor (name = the stored name); a UserError listing the names tried if absent. */
  get(canonical: string): TensorDescriptor {
    return this.checkpoint.describe(this.require(canonical));
  }

  expectShape(canonical: string, shape: readonly number[]): TensorDescriptor {
    return this.checkpoint.expectShape(this.require(canonical), shape);
  }

  async readF32(canonical: string): Promise<Float32Array> {
    return this.checkpoint.readF32(this.require(canonical));
  }

  async readStored(canonical: string): Promise<StoredArray> {
    return this.checkpoint.readStored(this.require(canonical));
  }

  private require(canonical: string): string {
    const name = this.resolve(canonical);
    if (name === undefined) {
      const tried = this.prefixes.map((p) => `'${p}${canonical}'`).join(', ');
      const modelType = this.checkpoint.modelType;
      throw new UserError(
        `has no tensor '${canonical}' (looked for ${tried}); the checkpoint does not match its config.json${modelType ? ` (model_type '${modelType}')` : ''}.`,
        this.checkpoint.weightsSource, MISMATCH_HINT);
    }
    return name;
  }
}

// ---------------------------------------------------------------------------------------------

async function resolveModelFolder(folder: string): Promise<string> {
  let dir: string;
  try {
    dir = await fsp.realpath(folder);
  } catch (err) {
    throw fsUserError(err, folder, 'open the model folder');
  }
  const stat = await fsp.stat(dir);
  check(stat.isDirectory(), 'is a file, not a model folder.', folder, MODEL_FOLDER_HINT);
  return dir;
}

/** A shard name of an index: a plain file name next to it; anything else could point outside the folder. */
export function isPlainFileName(name: string): boolean {
  return name === path.basename(name) && !/[\\/]/.test(name) && name !== '.' && name !== '..' && name !== '';
}

/** The file's text, or undefined when it does not exist; other failures are UserErrors. */
async function readTextIfExists(file: string): Promise<string | undefined> {
  try {
    return await fsp.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fsUserError(err, file, 'read');
  }
}

function parseJson(text: string, file: string): unknown {
  try {
    // A byte-order mark is invisible in editors and harmless; JSON.parse would reject it.
    return JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    throw new UserError(`is not valid JSON (${(err as Error).message}).`, file, 'Fix the file, or download the model again.');
  }
}

function parseJsonObject(text: string, file: string): JsonObject {
  const value = parseJson(text, file);
  check(typeof value === 'object' && value !== null && !Array.isArray(value), 'must contain a JSON object.', file,
    'Fix the file, or download the model again.');
  return value as JsonObject;
}

interface OpenedWeights {
  source: string;
  files: WeightFile[];
  tensorFiles: Map<string, WeightFile>;
  indexText?: string;
}

/** Finds the weights (SPEC §1.1): model.safetensors, else the shard index, else one *.safetensors. */
async function openWeights(dir: string): Promise<OpenedWeights> {
  let entries: string[];
  try {
    entries = (await fsp.readdir(dir)).sort();
  } catch (err) {
    throw fsUserError(err, dir, 'list the model folder');
  }

  if (entries.includes(SINGLE_WEIGHTS_FILE)) return openSingle(dir, SINGLE_WEIGHTS_FILE);
  if (entries.includes(WEIGHTS_INDEX_FILE)) return openSharded(dir);
  const safetensors = entries.filter((e) => e.endsWith('.safetensors'));
  if (safetensors.length === 1) return openSingle(dir, safetensors[0]!);
  if (safetensors.length > 1) {
    throw new UserError(
      `has several .safetensors files (${safetensors.join(', ')}) but no model.safetensors or ${WEIGHTS_INDEX_FILE}, so it is unclear which are the weights.`,
      dir, `Keep only the model's weights file, or add the ${WEIGHTS_INDEX_FILE} that lists the shards.`);
  }

  const pickle = entries.find(isPickleWeights);
  if (pickle !== undefined) {
    throw new UserError(
      'is a PyTorch pickle checkpoint. Pickle checkpoints are never loaded, because loading them can run arbitrary code.',
      path.join(dir, pickle),
      'Convert the model to safetensors (e.g. `model.save_pretrained(folder, safe_serialization=True)` in Python), or download the safetensors version: most models on the Hugging Face Hub have a model.safetensors.');
  }
  throw new UserError('has no model weights (no model.safetensors, no model.safetensors.index.json, no other .safetensors file).',
    dir, MODEL_FOLDER_HINT);
}

async function openWeightFile(dir: string, name: string, listedIn?: string): Promise<WeightFile> {
  const displayPath = path.join(dir, name);
  let realPath: string;
  try {
    realPath = await fsp.realpath(displayPath);
  } catch (err) {
    if (listedIn && (err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new UserError(`is listed in ${listedIn} but is missing (or is a broken link).`, displayPath, REDOWNLOAD_HINT);
    }
    throw fsUserError(err, displayPath, 'open the weights file');
  }
  return { displayPath, realPath, safetensors: await SafetensorsFile.open(displayPath) };
}

async function openSingle(dir: string, name: string): Promise<OpenedWeights> {
  const file = await openWeightFile(dir, name);
  const tensorFiles = new Map(file.safetensors.tensorNames().map((n) => [n, file] as const));
  return { source: file.displayPath, files: [file], tensorFiles };
}

/** Reads the shard index (SPEC §1.3), opens each shard once, and checks every listed tensor is there. */
async function openSharded(dir: string): Promise<OpenedWeights> {
  const indexPath = path.join(dir, WEIGHTS_INDEX_FILE);
  const indexText = (await readTextIfExists(indexPath))!;
  const index = parseJsonObject(indexText, indexPath);
  const weightMap = index['weight_map'];
  check(typeof weightMap === 'object' && weightMap !== null && !Array.isArray(weightMap),
    "has no 'weight_map' object.", indexPath, REDOWNLOAD_HINT);

  const namesByShard = new Map<string, string[]>();
  const shardOf = new Map<string, string>();
  for (const [tensor, shard] of Object.entries(weightMap)) {
    check(typeof shard === 'string', `maps tensor '${tensor}' to a non-string shard name.`, indexPath, REDOWNLOAD_HINT);
    check(isPlainFileName(shard),
      `maps tensor '${tensor}' to '${shard}', which is not a file name in the model folder.`, indexPath, REDOWNLOAD_HINT);
    shardOf.set(tensor, shard);
    const names = namesByShard.get(shard) ?? [];
    names.push(tensor);
    namesByShard.set(shard, names);
  }
  check(shardOf.size > 0, "lists no tensors in 'weight_map'.", indexPath, REDOWNLOAD_HINT);

  const shardNames = [...namesByShard.keys()].sort();
  const opened = await Promise.all(shardNames.map((s) => openWeightFile(dir, s, WEIGHTS_INDEX_FILE)));
  const files = new Map(shardNames.map((s, i) => [s, opened[i]!] as const));
  for (const [shard, names] of namesByShard) {
    const file = files.get(shard)!;
    for (const name of names) {
      check(file.safetensors.has(name), `does not contain tensor '${name}', which ${WEIGHTS_INDEX_FILE} places in it.`,
        file.displayPath, REDOWNLOAD_HINT);
    }
  }
  // Tensors in index order; a shard's extra tensors not in the index are ignored, as transformers does.
  const tensorFiles = new Map([...shardOf].map(([name, shard]) => [name, files.get(shard)!] as const));
  return { source: indexPath, files: opened, tensorFiles, indexText };
}
