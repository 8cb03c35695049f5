/**
 * The Hugging Face cache as `huggingface_hub` defines it, shared by discovery (hub-cache.ts) and
 * download (hub-download.ts): where the cache is, how repo ids map to folders, what a snapshot
 * holds, and which files a model needs.
 *
 * Layout (huggingface_hub `file_download.py`), for repo `org/name`:
 *
 *   <cache>/models--org--name/
 *     blobs/<etag>                      file contents, named by etag: sha256 for LFS files, git sha1 otherwise
 *     blobs/<etag>.incomplete           a download in progress (resumable); never referenced by a snapshot
 *     refs/<revision>                   the commit hash a branch or tag pointed to (no newline)
 *     snapshots/<commit>/<file>         relative symlink ../../blobs/<etag>, or a plain copy where
 *                                       the file system has no symlinks
 *   <cache>/.locks/models--org--name/   lock files
 *
 * Environment, as huggingface_hub `constants.py` reads it: HF_HUB_CACHE (legacy
 * HUGGINGFACE_HUB_CACHE), else $HF_HOME/hub, with HF_HOME defaulting to
 * $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface; `~` and `$VAR` are expanded.
 */
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UserError } from '../errors.js';
import { CONFIG_FILE, PREPROCESSOR_CONFIG_FILE, SINGLE_WEIGHTS_FILE, WEIGHTS_INDEX_FILE, isPickleWeights, isPlainFileName } from './checkpoint.js';

export type Env = Readonly<Record<string, string | undefined>>;

export const DEFAULT_ENDPOINT = 'https://huggingface.co';
export const DEFAULT_REVISION = 'main';
/** An example id for messages. */
export const EXAMPLE_MODEL_ID = 'google/vit-base-patch16-224';

const TRUE_VALUES = new Set(['1', 'ON', 'YES', 'TRUE']);

/** An environment variable, with empty values treated as unset (an empty HF_HOME is a mistake, not "the current folder"). */
function envValue(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}

/** Python's os.path.expanduser + os.path.expandvars: `~`, `$VAR` and `${VAR}`; unknown variables stay as written. */
function expandPath(value: string, env: Env): string {
  let out = value.replace(/\$(\w+)|\$\{([^}]+)\}/g, (whole, a: string | undefined, b: string | undefined) => env[(a ?? b)!] ?? whole);
  if (out === '~' || out.startsWith('~/') || out.startsWith(`~${path.sep}`)) out = path.join(os.homedir(), out.slice(1));
  return out;
}

/** $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface. */
export function hfHome(env: Env = process.env): string {
  const home = envValue(env, 'HF_HOME');
  if (home !== undefined) return expandPath(home, env);
  const xdg = envValue(env, 'XDG_CACHE_HOME');
  return expandPath(path.join(xdg ?? path.join(os.homedir(), '.cache'), 'huggingface'), env);
}

/** The hub cache folder, resolved exactly as huggingface_hub does (see the file comment). */
export function hubCacheDir(env: Env = process.env): string {
  const explicit = envValue(env, 'HF_HUB_CACHE') ?? envValue(env, 'HUGGINGFACE_HUB_CACHE');
  return explicit !== undefined ? expandPath(explicit, env) : path.join(hfHome(env), 'hub');
}

/** HF_ENDPOINT without trailing slashes, else the public hub. */
export function hubEndpoint(env: Env = process.env): string {
  return (envValue(env, 'HF_ENDPOINT') ?? DEFAULT_ENDPOINT).replace(/\/+$/, '');
}

/** HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) set to 1/ON/YES/TRUE, as huggingface_hub reads them. */
export function isHubOffline(env: Env = process.env): boolean {
  const value = envValue(env, 'HF_HUB_OFFLINE') ?? envValue(env, 'TRANSFORMERS_OFFLINE');
  return value !== undefined && TRUE_VALUES.has(value.toUpperCase());
}

/** Where `hf auth login` stores the token: $HF_TOKEN_PATH, else $HF_HOME/token. */
export function hubTokenPath(env: Env = process.env): string {
  const explicit = envValue(env, 'HF_TOKEN_PATH');
  return explicit !== undefined ? expandPath(explicit, env) : path.join(hfHome(env), 'token');
}

/**
 * The access token as huggingface_hub finds it: HF_TOKEN (legacy HUGGING_FACE_HUB_TOKEN), else
 * the token file; whitespace trimmed, empty means none.
 */
export async function readHubToken(env: Env = process.env): Promise<string | undefined> {
  const fromEnv = (envValue(env, 'HF_TOKEN') ?? envValue(env, 'HUGGING_FACE_HUB_TOKEN'))?.trim();
  if (fromEnv) return fromEnv;
  try {
    const fromFile = (await fsp.readFile(hubTokenPath(env), 'utf8')).trim();
    return fromFile || undefined;
  } catch {
    return undefined; // no token file: anonymous access
  }
}

// --- repo ids and references ------------------------------------------------------------------

/**
 * huggingface_hub `validate_repo_id` for the `org/name` form: word characters, `-` and `.`, no
 * `--` or `..`, not starting or ending with `-` or `.`, at most 96 characters. Ids without an
 * organisation (legacy `gpt2`) are not accepted: on a command line they are more likely a
 * mistyped folder than a Hub model.
 */
const REPO_ID = /^[\w.-]+\/[\w.-]+$/;
export function isRepoId(id: string): boolean {
  return id.length <= 96 && REPO_ID.test(id) && !id.includes('--') && !id.includes('..')
    && id.split('/').every((part) => !/^[-.]|[-.]$/.test(part));
}

export const COMMIT_HASH = /^[0-9a-f]{40}$/;

export interface HubReference {
  repoId: string;
  revision: string;
}

/**
 * Parses `org/name` or `org/name@revision` (a branch, tag, commit, or `refs/pr/N`); undefined when
 * `ref` is not in that form. Whether a folder of that name exists is the caller's question.
 */
export function parseHubReference(ref: string): HubReference | undefined {
  const at = ref.indexOf('@');
  const repoId = at < 0 ? ref : ref.slice(0, at);
  const revision = at < 0 ? DEFAULT_REVISION : ref.slice(at + 1);
  if (!isRepoId(repoId) || !isSafeRevision(revision)) return undefined;
  return { repoId, revision };
}

/** A revision that can be a path under refs/ (huggingface_hub writes refs/<revision> as given). */
export function isSafeRevision(revision: string): boolean {
  return revision !== '' && !path.isAbsolute(revision) && !revision.includes('\\')
    && revision.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}

/** `org/name` → `models--org--name` (huggingface_hub `repo_folder_name`). */
export function repoFolderName(repoId: string): string {
  return ['models', ...repoId.split('/')].join('--');
}

/** `models--org--name` → `org/name`; undefined for datasets, spaces and other entries. */
export function repoIdFromFolderName(name: string): string | undefined {
  const parts = name.split('--');
  if (parts[0] !== 'models' || parts.length < 2) return undefined;
  return parts.slice(1).join('/');
}

export function repoStorageDir(cacheDir: string, repoId: string): string {
  return path.join(cacheDir, repoFolderName(repoId));
}

/** The commit a cached ref points to (refs/<revision>), or the revision itself when it is a commit hash. */
export async function readCachedRef(storageDir: string, revision: string): Promise<string | undefined> {
  if (COMMIT_HASH.test(revision)) return revision;
  try {
    const commit = (await fsp.readFile(path.join(storageDir, 'refs', ...revision.split('/')), 'utf8')).trim();
    return COMMIT_HASH.test(commit) ? commit : undefined;
  } catch {
    return undefined;
  }
}

/** Every ref of a cached repo (`main`, `v1.0`, `refs/pr/1`) and the commit it names. */
export async function readCachedRefs(storageDir: string): Promise<Map<string, string>> {
  const refs = new Map<string, string>();
  const walk = async (dir: string, prefix: string): Promise<void> => {
    let entries;
    try {
      entries = await fsp.readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const name = prefix ? `${prefix}/${entry.name}` : entry.name;
      if (entry.name.endsWith('.tmp')) continue; // a ref being written (writeAtomic), or left by a crash
      if (entry.isDirectory()) {
        await walk(path.join(dir, entry.name), name);
      } else {
        const commit = await readCachedRef(storageDir, name);
        if (commit) refs.set(name, commit);
      }
    }
  };
  await walk(path.join(storageDir, 'refs'), '');
  return refs;
}

// --- what a model needs -----------------------------------------------------------------------

/**
 * Files fetched besides the weights, when the repo has them: the configs, and the tokenizer files
 * CLIP and Fuyu read. Everything else in a repo (READMEs, other frameworks' weights, pickles,
 * ONNX exports) is never downloaded.
 */
export const METADATA_FILES: readonly string[] = [
  CONFIG_FILE, PREPROCESSOR_CONFIG_FILE, 'generation_config.json',
  'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'added_tokens.json', 'vocab.json', 'merges.txt',
];
const TOKENIZER_FILES = new Set(['tokenizer.json', 'vocab.json', 'merges.txt']);

/** Which weights a repo's file list offers (SPEC §1.1 order, as Checkpoint.open reads them). */
export type WeightsChoice =
  | { kind: 'single'; file: string }
  | { kind: 'sharded'; index: string }
  | { kind: 'pickle'; file: string }
  | { kind: 'none' };

export function chooseWeights(files: readonly string[]): WeightsChoice {
  // Top-level plain names only: these become paths, and a `\\` would be a separator on Windows.
  const top = files.filter((f) => !/[\\/]/.test(f) && !f.startsWith('.'));
  if (top.includes(SINGLE_WEIGHTS_FILE)) return { kind: 'single', file: SINGLE_WEIGHTS_FILE };
  if (top.includes(WEIGHTS_INDEX_FILE)) return { kind: 'sharded', index: WEIGHTS_INDEX_FILE };
  const safetensors = top.filter((f) => f.endsWith('.safetensors'));
  if (safetensors.length === 1) return { kind: 'single', file: safetensors[0]! };
  const pickle = top.find(isPickleWeights);
  return pickle !== undefined ? { kind: 'pickle', file: pickle } : { kind: 'none' };
}

/**
 * Shard names listed by a model.safetensors.index.json's weight_map, sorted; undefined when the
 * index is not usable. Names must be plain files next to the index.
 */
export function shardsOfIndex(indexText: string): string[] | undefined {
  let index: unknown;
  try {
    index = JSON.parse(indexText.replace(/^\uFEFF/, ''));
  } catch {
    return undefined;
  }
  const map = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) return undefined;
  const shards = new Set<string>();
  for (const shard of Object.values(map)) {
    if (typeof shard !== 'string' || !isPlainFileName(shard)) return undefined;
    shards.add(shard);
  }
  return shards.size > 0 ? [...shards].sort() : undefined;
}

/** What a model folder (a snapshot or a workspace folder) holds. */
export interface ModelFiles {
  config: boolean;
  preprocessor: boolean;
  tokenizer: boolean;
  /** Complete safetensors weights: the single file, or the index and every shard it names. */
  safetensors: boolean;
  /** Only pickle weights: the folder cannot be loaded (Checkpoint.open refuses it). */
  pickleOnly: boolean;
}

export interface ModelSummary {
  folder: string;
  /** config.json's model_type, when readable. */
  modelType?: string;
  /**
   * Bytes of the model's files present (configs, tokenizer, weights — not images, logs or
   * optimizer states that share a workspace folder), each distinct real file counted once.
   */
  sizeBytes: number;
  files: ModelFiles;
}

/** Whether `files` is enough to open the model (config.json + complete safetensors weights). */
export function isLoadable(files: ModelFiles): boolean {
  return files.config && files.safetensors;
}

/**
 * Looks at a folder without opening the weights: which files exist (following symlinks; a broken
 * link counts as missing), model_type, and the size on disk. Never throws for a damaged folder:
 * it describes what is there.
 */
export async function summarizeModelFolder(folder: string): Promise<ModelSummary> {
  let names: string[] = [];
  try {
    names = (await fsp.readdir(folder)).sort();
  } catch {
    // unreadable: summarised as empty
  }
  const sizes = new Map<string, { real: string; size: number }>();
  const present = new Set<string>();
  await Promise.all(names.map(async (name) => {
    const file = path.join(folder, name);
    try {
      const stat = await fsp.stat(file);
      if (!stat.isFile()) return;
      present.add(name);
      sizes.set(name, { real: await fsp.realpath(file), size: stat.size });
    } catch {
      // a broken symlink (blob deleted) is as good as missing
    }
  }));

  let modelType: string | undefined;
  if (present.has(CONFIG_FILE)) {
    try {
      const config = JSON.parse((await fsp.readFile(path.join(folder, CONFIG_FILE), 'utf8')).replace(/^\uFEFF/, '')) as unknown;
      const value = (config as { model_type?: unknown } | null)?.model_type;
      if (typeof value === 'string') modelType = value;
    } catch {
      // an unreadable config.json is reported when the model is opened
    }
  }

  const weights = chooseWeights([...present]);
  const modelFiles = METADATA_FILES.filter((n) => present.has(n));
  let safetensors = weights.kind === 'single';
  if (weights.kind === 'single' || weights.kind === 'pickle') modelFiles.push(weights.file);
  if (weights.kind === 'sharded') {
    modelFiles.push(weights.index);
    let shards: string[] | undefined;
    try {
      shards = shardsOfIndex(await fsp.readFile(path.join(folder, weights.index), 'utf8'));
    } catch {
      // unreadable index: incomplete
    }
    safetensors = shards !== undefined && shards.every((s) => present.has(s));
    modelFiles.push(...(shards ?? []).filter((s) => present.has(s)));
  }
  const realSizes = new Map(modelFiles.map((n) => [sizes.get(n)!.real, sizes.get(n)!.size] as const));
  const hasAnySafetensors = [...present].some((n) => n.endsWith('.safetensors'));
  return {
    folder,
    ...(modelType !== undefined ? { modelType } : {}),
    sizeBytes: [...realSizes.values()].reduce((a, b) => a + b, 0),
    files: {
      config: present.has(CONFIG_FILE),
      preprocessor: present.has(PREPROCESSOR_CONFIG_FILE),
      tokenizer: [...TOKENIZER_FILES].some((n) => present.has(n)),
      safetensors,
      pickleOnly: !hasAnySafetensors && weights.kind === 'pickle',
    },
  };
}

/** The error for a repo or folder whose only weights are pickles; `repoId` makes the hint concrete. */
export function pickleOnlyError(where: string, pickleFile: string, repoId = 'ORG/NAME'): UserError {
  return new UserError(
    `has only PyTorch pickle weights (${pickleFile}), no safetensors. Pickle checkpoints are never loaded or downloaded, because loading them can run arbitrary code.`,
    where,
    `Use a model with safetensors weights: most models on the Hugging Face Hub have a model.safetensors, and for many others the Hub's conversion bot has opened a pull request adding one (use it as ${repoId}@refs/pr/N, N being that pull request's number). Or convert the model with \`model.save_pretrained(folder, safe_serialization=True)\` in Python.`);
}

/** A model folder's name for people: the hub id for a cache snapshot (its own name is a commit hash), else the folder name. */
export function modelDisplayName(folder: string): string {
  const snapshots = path.dirname(folder);
  const repoId = path.basename(snapshots) === 'snapshots' ? repoIdFromFolderName(path.basename(path.dirname(snapshots))) : undefined;
  return repoId ?? path.basename(folder);
}
