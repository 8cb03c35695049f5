/**
 * Finding models where users keep them: the Hugging Face cache (hub-layout.ts has its rules),
 * folders in the workspace, and — through resolveModelReference — the Hub itself. Accepting
 * "a folder or a hub id" everywhere a model is asked for goes through resolveModelReference.
 */
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UserError } from '../errors.js';
import { RepoNotFoundError, downloadModel, type DownloadOptions } from './hub-download.js';
import {
  COMMIT_HASH, DEFAULT_REVISION, chooseWeights, isSafeRevision, EXAMPLE_MODEL_ID, hubCacheDir, isHubOffline, isLoadable, parseHubReference, pickleOnlyError,
  readCachedRef, readCachedRefs, repoIdFromFolderName, repoStorageDir, summarizeModelFolder, type ModelSummary,
} from './hub-layout.js';

export {
  hfHome, hubCacheDir, hubEndpoint, isHubOffline, isLoadable, parseHubReference, readHubToken,
  type Env, type HubReference, type ModelFiles, type ModelSummary,
} from './hub-layout.js';

/** One snapshot of a model in the HF cache. */
export interface CachedModel extends ModelSummary {
  repoId: string;
  commit: string;
  /** Refs pointing at this commit (`main`, tags, `refs/pr/1`); empty for a snapshot fetched by commit. */
  refs: string[];
}

/**
 * Every model snapshot in the cache (datasets and spaces are skipped), sorted by id, the snapshot
 * `main` points to first. An absent or unreadable cache is an empty list: it only means nothing
 * was downloaded yet.
 */
export async function listCachedModels(cacheDir: string = hubCacheDir()): Promise<CachedModel[]> {
  let entries: string[];
  try {
    entries = await fsp.readdir(cacheDir);
  } catch {
    return [];
  }
  const models: CachedModel[] = [];
  for (const entry of entries.sort()) {
    const repoId = repoIdFromFolderName(entry);
    if (repoId === undefined) continue;
    const storage = path.join(cacheDir, entry);
    const refs = await readCachedRefs(storage);
    let commits: string[];
    try {
      commits = (await fsp.readdir(path.join(storage, 'snapshots'))).filter((c) => COMMIT_HASH.test(c));
    } catch {
      continue;
    }
    const refsOf = (commit: string): string[] => [...refs].filter(([, c]) => c === commit).map(([r]) => r).sort();
    const snapshots = await Promise.all(commits.map(async (commit): Promise<CachedModel> => ({
      ...(await summarizeModelFolder(path.join(storage, 'snapshots', commit))),
      repoId, commit, refs: refsOf(commit),
    })));
    const rank = (m: CachedModel): number => (m.refs.includes(DEFAULT_REVISION) ? 0 : m.refs.length > 0 ? 1 : 2);
    snapshots.sort((a, b) => rank(a) - rank(b) || a.commit.localeCompare(b.commit));
    models.push(...snapshots);
  }
  return models;
}

/** Folders never searched for models: dependencies, VCS data, Python environments and caches. */
const SKIPPED_FOLDERS = new Set(['node_modules', '__pycache__', 'venv', 'site-packages']);

export interface FindWorkspaceModelsOptions {
  /** How many folder levels below `root` to look (root itself is depth 0); default 4. */
  maxDepth?: number;
  /** Stop after looking at this many folders, so a huge tree costs bounded time; default 5000. */
  maxFolders?: number;
}

/**
 * Folders under `root` with config.json and safetensors weights (complete or not: the picker
 * should show a half-copied model rather than hide it; `isLoadable` tells). Hidden folders
 * (.git, .venv…) and node_modules are skipped; symlinked folders are looked at but not descended into,
 * so link cycles cannot trap the search.
 */
export async function findWorkspaceModels(root: string, options: FindWorkspaceModelsOptions = {}): Promise<ModelSummary[]> {
  const maxDepth = options.maxDepth ?? 4;
  let budget = options.maxFolders ?? 5000;
  const found: ModelSummary[] = [];
  let level: string[] = [root];
  for (let depth = 0; level.length > 0 && depth <= maxDepth; depth++) {
    const next: string[] = [];
    for (const dir of level) {
      if (budget-- <= 0) return sortByFolder(found);
      let entries;
      try {
        entries = await fsp.readdir(dir, { withFileTypes: true });
      } catch {
        continue;
      }
      const names = entries.map((e) => e.name);
      if (names.includes('config.json') && names.some((n) => n.endsWith('.safetensors'))) {
        found.push(await summarizeModelFolder(dir));
      }
      for (const entry of entries) {
        if (entry.name.startsWith('.') || SKIPPED_FOLDERS.has(entry.name)) continue;
        const child = path.join(dir, entry.name);
        if (entry.isDirectory()) {
          next.push(child);
        } else if (entry.isSymbolicLink()) {
          const target = await fsp.stat(child).catch(() => undefined);
          if (!target?.isDirectory()) continue;
          const inner = await fsp.readdir(child).catch(() => [] as string[]);
          if (inner.includes('config.json') && inner.some((n) => n.endsWith('.safetensors'))) found.push(await summarizeModelFolder(child));
        }
      }
    }
    level = next;
  }
  return sortByFolder(found);
}

function sortByFolder<T extends { folder: string }>(models: T[]): T[] {
  return models.sort((a, b) => a.folder.localeCompare(b.folder));
}

export interface ResolvedModel {
  /** The model folder to open (for a hub id: snapshots/<commit> in the cache). */
  folder: string;
  source: 'folder' | 'cache' | 'download';
  repoId?: string;
  commit?: string;
}

export interface ResolveOptions extends DownloadOptions {
  /** Resolve relative folders against this; default process.cwd(). */
  cwd?: string;
  /**
   * The reference is a Hub id for sure (e.g. picked from a list of checkpoints): never take a
   * folder of the same name, and do not mention one in errors.
   */
  hubOnly?: boolean;
}

/**
 * What the user typed where a model is expected → a model folder:
 * - an existing folder → that folder (an `org/name` folder in the current directory wins over the Hub);
 * - `org/name` or `org/name@revision` → the cached snapshot when the cache holds a loadable one
 *   (refs/<revision> → commit → snapshots/<commit>), with no network access at all; else a
 *   download (downloadModel), unless offline (HF_HUB_OFFLINE=1 or `offline`), which fails with
 *   a message saying what is missing.
 * `options.revision` overrides an `@revision` in the reference.
 */
export async function resolveModelReference(ref: string, options: ResolveOptions = {}): Promise<ResolvedModel> {
  const env = options.env ?? process.env;
  const trimmed = ref.trim();
  const asPath = path.resolve(options.cwd ?? process.cwd(), trimmed.replace(/^~(?=$|[\\/])/, os.homedir()));
  const stat = options.hubOnly ? undefined : await fsp.stat(asPath).catch(() => undefined);
  const hub = parseHubReference(trimmed);
  if (options.hubOnly && !hub) {
    throw new UserError('is not a Hugging Face model id.', trimmed, `Give an id such as ${EXAMPLE_MODEL_ID} (optionally @revision).`);
  }
  if (stat?.isDirectory() || !hub) {
    if (!stat) {
      throw new UserError('is neither a model folder nor a Hugging Face model id.', trimmed,
        `Give the folder that holds config.json and the .safetensors weights, or a Hub id such as ${EXAMPLE_MODEL_ID}.`);
    }
    if (!stat.isDirectory()) {
      throw new UserError('is a file, not a model folder.', asPath, 'Give the folder that holds config.json and the .safetensors weights.');
    }
    return { folder: asPath, source: 'folder' };
  }

  const repoId = hub.repoId;
  const revision = options.revision ?? hub.revision;
  const noFolderEither = options.hubOnly ? '' : ` There is no folder ${asPath} either.`;
  if (!isSafeRevision(revision)) throw new UserError(`"${revision}" is not a revision name.`, repoId, 'Give a branch, tag, commit hash or refs/pr/N.');
  const cacheDir = options.cacheDir ?? hubCacheDir(env);
  const storage = repoStorageDir(cacheDir, repoId);
  const commit = await readCachedRef(storage, revision);
  const cached = commit === undefined ? undefined : await summarizeModelFolder(path.join(storage, 'snapshots', commit));
  if (cached && isLoadable(cached.files)) return { folder: cached.folder, source: 'cache', repoId, commit };

  const label = revision === DEFAULT_REVISION ? repoId : `${repoId}@${revision}`;
  if (options.offline ?? isHubOffline(env)) {
    if (cached?.files.pickleOnly) {
      const weights = chooseWeights(await fsp.readdir(cached.folder));
      throw pickleOnlyError(cached.folder, weights.kind === 'pickle' ? weights.file : 'pytorch_model.bin', repoId);
    }
    const others = (await listCachedModels(cacheDir)).filter((m) => m.repoId === repoId && isLoadable(m.files));
    const hint = others.length > 0
      ? `The cache has it at other revisions: ${others.map((m) => `${repoId}@${m.refs[0] ?? m.commit}`).join(', ')}. Or unset HF_HUB_OFFLINE to download it.`
      : 'Unset HF_HUB_OFFLINE to download it, or copy it into this cache from a machine that has it (e.g. after `hf download` there).';
    throw new UserError(
      cached
        ? `is only partly in the Hugging Face cache (${cached.folder} has no complete safetensors weights) and offline mode is on (HF_HUB_OFFLINE=1).`
        : `is not in the Hugging Face cache (${cacheDir}) and offline mode is on (HF_HUB_OFFLINE=1).`,
      label, `${hint}${noFolderEither}`);
  }
  try {
    const downloaded = await downloadModel(repoId, { ...options, revision, cacheDir, offline: false });
    return { folder: downloaded.folder, source: 'download', repoId, commit: downloaded.commit };
  } catch (err) {
    // "models/vit" may well be a mistyped folder rather than a Hub id: say both.
    if (err instanceof RepoNotFoundError) throw new UserError(`${err.message}${noFolderEither}`);
    throw err;
  }
}
