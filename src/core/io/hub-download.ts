/**
 * Downloads a model from the Hugging Face Hub into the standard cache (hub-layout.ts), writing
 * what huggingface_hub writes so Python tools share the files, and nothing they would not:
 *
 * 1. `GET {endpoint}/api/models/{repo}/revision/{revision}` resolves the revision to a commit and
 *    lists the repo's files (what `snapshot_download` does).
 * 2. Only the files a model needs are fetched (METADATA_FILES + safetensors weights); a repo
 *    with only pickle weights is refused before anything is downloaded.
 * 3. Per file, `HEAD {endpoint}/{repo}/resolve/{commit}/{file}` without following the CDN
 *    redirect gives the etag (`X-Linked-Etag` for LFS files, else `ETag`) and the size
 *    (`X-Linked-Size`, else `Content-Length`), as `hf_hub_download` reads them.
 * 4. The bytes go to `blobs/<etag>.incomplete` (resumed with Range after a dropped connection or
 *    a previous run, restarted when the server ignores Range), are checked against the size and,
 *    for LFS files, the sha256 the etag is, flushed, and renamed to `blobs/<etag>`; only then does
 *    `snapshots/<commit>/<file>` link to it. A failure at any point (disk full, permission,
 *    cancel) leaves at most the `.incomplete` file, which no snapshot references.
 * 5. `refs/<revision>` gets the commit once every file is in place.
 *
 * Concurrent downloads of one blob (two windows, CLI and extension) are serialised by an
 * exclusive lock file in `.locks/` (huggingface_hub keeps its own, flock-based, locks there too);
 * a lock whose owner died or stopped refreshing it is taken over. Content addressing makes the
 * end state the same whoever wins.
 *
 * Written on Node's fetch rather than `@huggingface/hub`: its downloadFileToCacheDir names the
 * snapshot after each file's last commit instead of the revision's commit, writes no refs, and
 * has no resume, size or hash check, lock, progress or cancel; what is left to reuse is a few
 * lines of URL building.
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { CancelledError, UserError, check } from '../errors.js';
import { CONFIG_FILE } from './checkpoint.js';
import {
  COMMIT_HASH, DEFAULT_REVISION, EXAMPLE_MODEL_ID, METADATA_FILES, chooseWeights, hubCacheDir, hubEndpoint, isHubOffline,
  isRepoId, isSafeRevision, pickleOnlyError, readHubToken, repoStorageDir, shardsOfIndex, type Env,
} from './hub-layout.js';
import { fsUserError, writeWholeFile } from './safetensors.js';

export interface DownloadProgress {
  repoId: string;
  /** The file whose bytes are arriving (or that was just found complete). */
  file: string;
  /** Bytes of all the model's files present so far: already cached, resumed, and downloaded. */
  bytes: number;
  /**
   * Bytes of all the model's files known so far: it grows as the file list is worked out
   * (config.json, then the rest) and is final before the first byte of weights arrives.
   */
  total: number;
  /** Download speed over the last few seconds, bytes per second. */
  rate: number;
}

export interface HubOptions {
  /** Environment to read HF_* variables from; default process.env. */
  env?: Env;
  /** Default: hubCacheDir(env). */
  cacheDir?: string;
  /** Default: HF_ENDPOINT, else https://huggingface.co. */
  endpoint?: string;
  /** Default: HF_TOKEN, else the token file (readHubToken); null for anonymous access. */
  token?: string | null;
  /** Default: HF_HUB_OFFLINE. Offline, nothing touches the network. */
  offline?: boolean;
  signal?: AbortSignal;
  onProgress?: (progress: DownloadProgress) => void;
}

export interface DownloadOptions extends HubOptions {
  /** Branch, tag, `refs/pr/N` or commit; default `main`. */
  revision?: string;
  /**
   * model_type values the caller can run; checked on config.json before any weights are
   * downloaded, so an unsupported model costs kilobytes, not gigabytes.
   */
  modelTypes?: readonly string[];
  /** Consecutive failed attempts per file before giving up (progress resets the count); default 5. */
  retries?: number;
  /** First wait between attempts, doubled each time (capped at 8 s); default 500 ms. */
  retryDelayMs?: number;
  /** A connection that sends nothing for this long is dropped and resumed; default 30 s. */
  idleTimeoutMs?: number;
}

export interface DownloadedModel {
  repoId: string;
  revision: string;
  commit: string;
  /** snapshots/<commit>: a model folder to hand to Checkpoint.open / openModel. */
  folder: string;
  /** The files of the snapshot this download made sure of. */
  files: string[];
  /** Bytes that came over the network in this call (0 when everything was cached). */
  downloadedBytes: number;
}

/** `{endpoint}/{repo}/resolve/{revision}/{file}`, with the revision quoted as huggingface_hub's hf_hub_url does. */
export function hubFileUrl(endpoint: string, repoId: string, revision: string, file: string): string {
  return `${endpoint}/${repoId}/resolve/${encodeURIComponent(revision)}/${file.split('/').map(encodeURIComponent).join('/')}`;
}

/** Decimal units, as the Hub's pages show sizes. */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = n;
  let unit = -1;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 2 : value < 100 ? 1 : 0)} ${units[unit]}`;
}

const DEFAULT_RETRIES = 5;
const DEFAULT_RETRY_DELAY_MS = 500;
const MAX_RETRY_DELAY_MS = 8000;
const DEFAULT_IDLE_TIMEOUT_MS = 30_000;
/** Metadata requests (API, HEAD) are small: a dead server should fail fast, not after the download backoff. */
const METADATA_RETRIES = 2;
const MAX_REDIRECTS = 10;
const LOCK_POLL_MS = 100;
const LOCK_REFRESH_MS = 5_000;
const LOCK_STALE_MS = 60_000;
const PROGRESS_INTERVAL_MS = 100;
const RATE_WINDOW_MS = 3_000;
const USER_AGENT = `vision-inspector; node/${process.versions.node}`;
/** Etags become file names: anything else (a hostile or broken server) must not reach the file system. */
const SAFE_ETAG = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

/** The Hub has no such repo (or it is private and the token cannot see it). */
export class RepoNotFoundError extends UserError {}

/** A failure worth retrying: connection refused or dropped, timeout, 5xx. */
class TransientError extends Error {
  override readonly name = 'TransientError';
}

/** One download call's settings and state. */
interface Session {
  repoId: string;
  endpoint: string;
  token: string | undefined;
  signal: AbortSignal | undefined;
  retries: number;
  retryDelayMs: number;
  idleTimeoutMs: number;
  progress: ProgressTracker;
}

/**
 * Downloads what `repoId` at `revision` needs to run into the HF cache and returns its snapshot
 * folder. Files already in the cache are not fetched again (nor even HEAD-requested).
 */
export async function downloadModel(repoId: string, options: DownloadOptions = {}): Promise<DownloadedModel> {
  const env = options.env ?? process.env;
  const revision = options.revision ?? DEFAULT_REVISION;
  check(isRepoId(repoId), `"${repoId}" is not a Hugging Face model id.`, undefined, `Ids look like "${EXAMPLE_MODEL_ID}" (organisation/name, as in the model page's URL).`);
  check(isSafeRevision(revision), `"${revision}" is not a revision name.`, undefined, 'Give a branch, tag, commit hash or refs/pr/N.');
  if (options.offline ?? isHubOffline(env)) {
    throw new UserError(`cannot download ${repoId}: offline mode is on (HF_HUB_OFFLINE=1).`, undefined,
      'Unset HF_HUB_OFFLINE to download it, or copy it into the Hugging Face cache from a machine that has it.');
  }
  throwIfAborted(options.signal);
  const session: Session = {
    repoId,
    endpoint: (options.endpoint ?? hubEndpoint(env)).replace(/\/+$/, ''),
    token: options.token === null ? undefined : options.token ?? (await readHubToken(env)),
    signal: options.signal,
    retries: options.retries ?? DEFAULT_RETRIES,
    retryDelayMs: options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS,
    idleTimeoutMs: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
    progress: new ProgressTracker(repoId, options.onProgress),
  };
  const storage = repoStorageDir(options.cacheDir ?? hubCacheDir(env), repoId);

  const { commit, files: repoFiles } = await resolveRevision(session, revision);
  const available = new Set(repoFiles);
  const weights = chooseWeights(repoFiles);
  if (weights.kind === 'pickle') throw pickleOnlyError(repoId, weights.file, repoId);
  if (weights.kind === 'none') {
    throw new UserError(`has no safetensors weights (no model.safetensors, no model.safetensors.index.json) at revision ${revision}.`,
      repoId, 'Vision Inspector runs Hugging Face transformers checkpoints stored as safetensors.');
  }
  check(available.has(CONFIG_FILE), `has no config.json at revision ${revision}, so it is not a transformers model.`, repoId,
    `Choose a transformers model, such as ${EXAMPLE_MODEL_ID}.`);

  const snapshot = path.join(storage, 'snapshots', commit);
  const fetcher = new FileFetcher(session, storage, commit);

  // config.json first: an unsupported model is refused before its weights are downloaded.
  await fetcher.fetchAll([CONFIG_FILE]);
  if (options.modelTypes) await checkModelType(path.join(snapshot, CONFIG_FILE), options.modelTypes);

  // Every size is known (the progress total final) before the first weight byte is fetched.
  const metadata = METADATA_FILES.filter((f) => f !== CONFIG_FILE && available.has(f));
  let weightFiles: string[];
  let weightPlan: FileMetadata[];
  if (weights.kind === 'sharded') {
    await fetcher.fetchAll([...metadata, weights.index]);
    const indexPath = path.join(snapshot, weights.index);
    const shards = shardsOfIndex(await fsp.readFile(indexPath, 'utf8'));
    check(shards, 'does not list its shards in a usable "weight_map".', `${repoId}/${weights.index}`,
      'The repository is damaged or not a transformers checkpoint.');
    const missing = shards.filter((s) => !available.has(s));
    check(missing.length === 0, `lists shards the repository does not have: ${missing.join(', ')}.`, `${repoId}/${weights.index}`,
      'The repository is damaged; try another revision.');
    weightFiles = shards;
    weightPlan = await fetcher.plan(weightFiles);
    await fetcher.checkDiskSpace(weightPlan);
  } else {
    weightFiles = [weights.file];
    const smallPlan = await fetcher.plan(metadata);
    weightPlan = await fetcher.plan(weightFiles);
    await fetcher.checkDiskSpace(weightPlan);
    await fetcher.fetch(smallPlan);
  }
  // Weights one at a time: the progress reads file by file, and parallel streams gain nothing on one link.
  await fetcher.fetch(weightPlan, { sequential: true });

  if (revision !== commit) await writeRef(storage, revision, commit);
  session.progress.finish();
  return {
    repoId, revision, commit, folder: snapshot,
    files: [CONFIG_FILE, ...metadata, ...(weights.kind === 'sharded' ? [weights.index] : []), ...weightFiles],
    downloadedBytes: session.progress.downloaded,
  };
}

async function checkModelType(configPath: string, modelTypes: readonly string[]): Promise<void> {
  let modelType: unknown;
  try {
    modelType = (JSON.parse((await fsp.readFile(configPath, 'utf8')).replace(/^\uFEFF/, '')) as { model_type?: unknown }).model_type;
  } catch (err) {
    throw new UserError(`is not valid JSON (${(err as Error).message}).`, configPath, 'The repository is damaged or not a transformers model.');
  }
  if (typeof modelType !== 'string' || !modelTypes.includes(modelType)) {
    throw new UserError(
      typeof modelType === 'string' ? `has model_type "${modelType}", which Vision Inspector does not support; its weights were not downloaded.` : 'has no "model_type".',
      configPath, `Supported model types: ${modelTypes.join(', ')}.`);
  }
}

/** refs/<revision> ← commit, without a newline, as huggingface_hub writes it; unchanged refs are not rewritten. */
async function writeRef(storage: string, revision: string, commit: string): Promise<void> {
  const ref = path.join(storage, 'refs', ...revision.split('/'));
  try {
    if ((await fsp.readFile(ref, 'utf8')) === commit) return;
  } catch {
    // no ref yet
  }
  try {
    await fsp.mkdir(path.dirname(ref), { recursive: true });
    await writeWholeFile(ref, commit, 'write the cache ref');
  } catch (err) {
    throw fsUserError(err, ref, 'write the revision reference');
  }
}

// --- the Hub's API ----------------------------------------------------------------------------

/** Commit hash and file list of a revision (huggingface_hub `repo_info`, as snapshot_download uses it). */
async function resolveRevision(session: Session, revision: string): Promise<{ commit: string; files: string[] }> {
  const url = `${session.endpoint}/api/models/${session.repoId}/revision/${encodeURIComponent(revision)}`;
  const response = await withRetries(session, Math.min(METADATA_RETRIES, session.retries), () => hubRequest(session, url, 'GET', {}, 'all'));
  await throwForStatus(session, response, { revision });
  let info: { sha?: unknown; siblings?: unknown };
  try {
    info = (await response.json()) as typeof info;
  } catch (err) {
    throw new UserError(`answered the model-info request with something that is not JSON (${(err as Error).message}).`, url,
      'Check HF_ENDPOINT: it must point to a Hugging Face Hub (or a mirror of it).');
  }
  const commit = info.sha;
  check(typeof commit === 'string' && COMMIT_HASH.test(commit), 'answered without a commit hash ("sha").', url,
    'Check HF_ENDPOINT: it must point to a Hugging Face Hub (or a mirror of it).');
  const siblings = Array.isArray(info.siblings) ? info.siblings : [];
  const files = siblings.map((s) => (s as { rfilename?: unknown } | null)?.rfilename).filter((f): f is string => typeof f === 'string');
  return { commit, files };
}

interface FileMetadata {
  file: string;
  etag: string;
  size: number;
  /** For LFS files the etag is the content's sha256, which the download is checked against. */
  sha256?: string;
}

/** HEAD on the resolve URL, stopping at the CDN redirect: its headers describe the file (hf_hub_download's get_hf_file_metadata). */
async function fileMetadata(session: Session, commit: string, file: string): Promise<FileMetadata> {
  const url = hubFileUrl(session.endpoint, session.repoId, commit, file);
  const response = await withRetries(session, Math.min(METADATA_RETRIES, session.retries), () => hubRequest(session, url, 'HEAD', {}, 'same-origin'));
  const redirected = response.status >= 300 && response.status < 400;
  if (!redirected) await throwForStatus(session, response, { file });
  const linkedEtag = response.headers.get('x-linked-etag');
  const etag = normalizeEtag(linkedEtag ?? response.headers.get('etag'));
  const sizeHeader = response.headers.get('x-linked-size') ?? response.headers.get('content-length');
  const size = sizeHeader === null ? NaN : Number(sizeHeader);
  check(etag !== undefined && SAFE_ETAG.test(etag), `was served without a usable ETag (${etag ?? 'none'}), so it cannot be stored in the Hugging Face cache.`,
    url, 'Check HF_ENDPOINT: it must point to a Hugging Face Hub (or a mirror of it).');
  check(Number.isSafeInteger(size) && size >= 0, 'was served without its size (X-Linked-Size or Content-Length).', url,
    'Check HF_ENDPOINT: it must point to a Hugging Face Hub (or a mirror of it).');
  const sha256 = linkedEtag !== null && /^[0-9a-f]{64}$/.test(etag) ? etag : undefined;
  return { file, etag, size, ...(sha256 ? { sha256 } : {}) };
}

/** huggingface_hub `_normalize_etag`: drops a weak-validator prefix and the quotes. */
function normalizeEtag(etag: string | null): string | undefined {
  if (etag === null) return undefined;
  return etag.replace(/^W\//, '').replace(/^"+|"+$/g, '');
}

/**
 * One request, following redirects by hand: 'same-origin' stops at a redirect to another
 * origin (the CDN) and returns it; 'all' follows it. The token only ever goes to the endpoint's
 * origin, so a signed CDN URL never sees it.
 */
async function hubRequest(
  session: Session, url: string, method: 'GET' | 'HEAD', headers: Record<string, string>, follow: 'all' | 'same-origin',
  signal: AbortSignal | undefined = session.signal,
): Promise<Response> {
  const endpointOrigin = new URL(session.endpoint).origin;
  let current = new URL(url);
  for (let hop = 0; ; hop++) {
    const sent: Record<string, string> = { 'User-Agent': USER_AGENT, 'Accept-Encoding': 'identity', ...headers };
    if (session.token && current.origin === endpointOrigin) sent['Authorization'] = `Bearer ${session.token}`;
    let response: Response;
    try {
      response = await fetch(current, { method, headers: sent, redirect: 'manual', signal });
    } catch (err) {
      throwIfAborted(session.signal);
      throw new TransientError(`cannot reach ${current.origin}: ${describeNetworkError(err)}`);
    }
    const location = response.headers.get('location');
    if (response.status < 300 || response.status >= 400 || location === null) return response;
    const next = new URL(location, current);
    if (follow === 'same-origin' && next.origin !== current.origin) return response;
    await response.body?.cancel().catch(() => undefined);
    if (hop >= MAX_REDIRECTS) throw new UserError(`redirects more than ${MAX_REDIRECTS} times.`, url);
    current = next;
  }
}

function describeNetworkError(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message ?? String(err);
}

/** Turns an error response into the message a user can act on; 5xx are transient. */
async function throwForStatus(session: Session, response: Response, about: { revision?: string; file?: string }): Promise<void> {
  if (response.ok) return;
  await response.body?.cancel().catch(() => undefined);
  const code = response.headers.get('x-error-code');
  const serverMessage = response.headers.get('x-error-message');
  const repo = session.repoId;
  const page = `${session.endpoint}/${repo}`;
  const status = response.status;
  if (code === 'RevisionNotFound') {
    throw new UserError(`has no revision "${about.revision}".`, repo, `Use a branch, tag or commit listed on ${page}/tree/main, or leave out @revision.`);
  }
  if (code === 'GatedRepo' || ((status === 401 || status === 403) && about.file !== undefined && code !== 'RepoNotFound')) {
    throw new UserError(
      session.token
        ? `is a gated model and your token has no access to it (HTTP ${status}).`
        : `is a gated model: downloading it needs a Hugging Face token (HTTP ${status}).`,
      repo,
      `Accept its licence on ${page} with your Hugging Face account, then set HF_TOKEN to an access token of that account (or log in with \`hf auth login\`).`);
  }
  if (code === 'RepoNotFound' || (about.file === undefined && (status === 401 || status === 404))) {
    throw new RepoNotFoundError(`was not found on the Hugging Face Hub (${session.endpoint}).`, repo,
      `Check the id: it is "organisation/name", as in the model page's URL (e.g. ${EXAMPLE_MODEL_ID}). A private model also needs HF_TOKEN set to a token that can read it.`);
  }
  if (code === 'EntryNotFound' || status === 404) {
    throw new UserError(`lists ${about.file ?? 'a file'} but the Hub does not serve it (HTTP 404).`, repo, 'The repository may be changing right now; try again later.');
  }
  if (status === 429) {
    throw new UserError('the Hugging Face Hub is rate-limiting downloads (HTTP 429).', repo,
      'Wait a few minutes and try again; downloads with HF_TOKEN set have higher limits.');
  }
  if (status >= 500) throw new TransientError(`the Hub answered HTTP ${status}${serverMessage ? ` (${serverMessage})` : ''}`);
  throw new UserError(`the Hub answered HTTP ${status}${serverMessage ? `: ${serverMessage}` : ''}.`, repo);
}

/** Runs `attempt`, retrying transient failures with exponential backoff; other errors pass through. */
async function withRetries<T>(session: Session, retries: number, attempt: () => Promise<T>): Promise<T> {
  for (let failures = 0; ; failures++) {
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof TransientError)) throw err;
      if (failures >= retries) {
        throw new UserError(`download failed: ${err.message}.`, session.repoId,
          'Check the network connection (and HTTPS_PROXY settings, if you use a proxy), then try again: the download resumes where it stopped. Set HF_HUB_OFFLINE=1 to use only models already in the cache.');
      }
      await sleep(Math.min(session.retryDelayMs * 2 ** failures, MAX_RETRY_DELAY_MS), session.signal);
    }
  }
}

// --- files into the cache ---------------------------------------------------------------------

class FileFetcher {
  private readonly blobs: string;
  private readonly snapshot: string;
  private readonly locks: string;

  constructor(private readonly session: Session, storage: string, private readonly commit: string) {
    this.blobs = path.join(storage, 'blobs');
    this.snapshot = path.join(storage, 'snapshots', commit);
    this.locks = path.join(path.dirname(storage), '.locks', path.basename(storage));
  }

  /**
   * The files missing from the snapshot, with their metadata (HEAD, in parallel); those present
   * count as done in the progress, the others in its total.
   */
  async plan(files: readonly string[]): Promise<FileMetadata[]> {
    const missing: string[] = [];
    for (const file of files) {
      const size = await existingFileSize(path.join(this.snapshot, file));
      if (size === undefined) missing.push(file);
      else this.session.progress.present(file, size);
    }
    const metadata = await settleAll(missing.map((file) => () => fileMetadata(this.session, this.commit, file)), false);
    for (const m of metadata) this.session.progress.expect(m.size);
    return metadata;
  }

  /** Puts planned files into the snapshot: in parallel (small files) or one by one (weights). */
  async fetch(planned: readonly FileMetadata[], options: { sequential?: boolean } = {}): Promise<void> {
    await settleAll(planned.map((m) => () => this.fetchFile(m)), options.sequential ?? false);
  }

  async fetchAll(files: readonly string[]): Promise<void> {
    await this.fetch(await this.plan(files));
  }

  private async fetchFile(meta: FileMetadata): Promise<void> {
    const blob = path.join(this.blobs, meta.etag);
    let newBlob = false;
    if ((await existingFileSize(blob)) === undefined) {
      await makeDir(this.blobs);
      newBlob = await withLock(path.join(this.locks, `${meta.etag}.vision-inspector.lock`), this.session.signal, async () => {
        // Another process may have finished it while this one waited for the lock.
        if ((await existingFileSize(blob)) !== undefined) return false;
        await downloadBlob(this.session, meta, this.commit, blob);
        return true;
      });
    }
    this.session.progress.set(meta.file, meta.size);
    await linkIntoSnapshot(blob, path.join(this.snapshot, meta.file), newBlob);
  }

  /** Refuses to start a download that cannot fit, instead of failing after gigabytes (huggingface_hub only warns). */
  async checkDiskSpace(metadata: readonly FileMetadata[]): Promise<void> {
    let needed = 0;
    for (const m of metadata) {
      if ((await existingFileSize(path.join(this.blobs, m.etag))) !== undefined) continue;
      needed += m.size - ((await existingFileSize(path.join(this.blobs, `${m.etag}.incomplete`))) ?? 0);
    }
    if (needed <= 0) return;
    await makeDir(this.blobs);
    let free: number;
    try {
      const stats = await fsp.statfs(this.blobs);
      free = stats.bavail * stats.bsize;
    } catch {
      return; // file systems that cannot tell: the write itself will say if the disk fills up
    }
    check(needed <= free, `needs ${formatBytes(needed)} of free disk space for the download, but only ${formatBytes(free)} is available.`,
      this.blobs, 'Free some disk space, or set HF_HUB_CACHE to a folder on a disk with more room.');
  }
}

/**
 * Downloads one blob into `<blob>.incomplete` and renames it into place. Resumes from what the
 * file already holds (this run's dropped connection, or an earlier run's, ours or Python's),
 * restarts when the server ignores the Range, and retries transient failures; every byte written
 * is counted against the announced size and, for LFS files, hashed against the sha256 etag.
 */
async function downloadBlob(session: Session, meta: FileMetadata, commit: string, blob: string): Promise<void> {
  const incomplete = `${blob}.incomplete`;
  const url = hubFileUrl(session.endpoint, session.repoId, commit, meta.file);
  let hash: { state: Hash; upTo: number } | undefined;
  let verifiedRestart = false;
  let failures = 0;

  for (;;) {
    throwIfAborted(session.signal);
    let have = (await existingFileSize(incomplete)) ?? 0;
    if (have > meta.size) {
      await truncate(incomplete);
      have = 0;
    }
    if (meta.sha256 && hash?.upTo !== have) hash = { state: await hashPrefix(incomplete, have), upTo: have };

    const before = have;
    try {
      if (have < meta.size || meta.size === 0) {
        have = await transfer(session, url, meta, incomplete, have, hash);
      }
    } catch (err) {
      if (!(err instanceof TransientError)) throw err;
      const now = (await existingFileSize(incomplete)) ?? 0;
      failures = now > before ? 1 : failures + 1; // bytes arrived: the link works, keep going
      if (failures > session.retries) {
        throw new UserError(`download of ${meta.file} failed: ${err.message}.`, session.repoId,
          'Check the network connection (and HTTPS_PROXY settings, if you use a proxy), then try again: the download resumes where it stopped.');
      }
      await sleep(Math.min(session.retryDelayMs * 2 ** (failures - 1), MAX_RETRY_DELAY_MS), session.signal);
      continue;
    }

    if (meta.sha256 && hash!.state.copy().digest('hex') !== meta.sha256) {
      // Corrupted in transit or by a concurrent writer outside our lock (e.g. an older Python
      // client on a network file system): start over once, then give up.
      await fsp.rm(incomplete, { force: true });
      hash = undefined;
      if (!verifiedRestart) {
        verifiedRestart = true;
        session.progress.set(meta.file, 0);
        continue;
      }
      throw new UserError(`${meta.file} was downloaded twice and both times its content did not match its sha256 (${meta.sha256}).`,
        session.repoId, 'Something between this machine and the Hub alters downloads (a proxy?); try another network.');
    }
    await publish(incomplete, blob, meta.file);
    return;
  }
}

/**
 * One GET from `have` onwards, appended to `incomplete`; returns the new length. Network
 * failures are TransientErrors (the caller resumes); file-system failures are UserErrors.
 */
async function transfer(
  session: Session, url: string, meta: FileMetadata, incomplete: string, have: number, hash: { state: Hash; upTo: number } | undefined,
): Promise<number> {
  // Our own controller: the idle timer aborts this request without cancelling the whole download.
  const controller = new AbortController();
  const onAbort = (): void => controller.abort();
  session.signal?.addEventListener('abort', onAbort);
  let idle: NodeJS.Timeout | undefined;
  let idleFired = false;
  const armIdle = (): void => {
    clearTimeout(idle);
    idle = setTimeout(() => {
      idleFired = true;
      controller.abort();
    }, session.idleTimeoutMs);
  };

  let handle: FileHandle | undefined;
  try {
    armIdle();
    const response = await hubRequest(session, url, 'GET', have > 0 ? { Range: `bytes=${have}-` } : {}, 'all', controller.signal)
      .catch((err: unknown) => {
        if (idleFired) throw new TransientError(`no answer for ${session.idleTimeoutMs / 1000} s`);
        throw err;
      });
    let restart = false;
    if (response.status === 206) {
      const start = /^bytes (\d+)-/.exec(response.headers.get('content-range') ?? '')?.[1];
      if (start === undefined || Number(start) !== have) {
        await response.body?.cancel().catch(() => undefined);
        await truncate(incomplete);
        session.progress.set(meta.file, 0);
        throw new TransientError('the server resumed at the wrong offset; restarting');
      }
    } else if (response.status === 416) {
      // Range not satisfiable: what we hold does not fit this file; start over.
      await response.body?.cancel().catch(() => undefined);
      await truncate(incomplete);
      session.progress.set(meta.file, 0);
      throw new TransientError('the server refused to resume; restarting');
    } else {
      await throwForStatus(session, response, { file: meta.file });
      restart = have > 0; // 200 to a Range request: the server sends the whole file again
    }
    if (restart) {
      have = 0;
      if (hash) {
        hash.state = createHash('sha256');
        hash.upTo = 0;
      }
    }
    session.progress.set(meta.file, have);
    if (!response.body) throw new TransientError('empty response');

    try {
      handle = await fsp.open(incomplete, restart ? 'w' : 'a');
    } catch (err) {
      throw fsUserError(err, incomplete, 'write the download');
    }
    const reader = response.body.getReader();
    for (;;) {
      let chunk: Awaited<ReturnType<typeof reader.read>>;
      try {
        chunk = await reader.read();
      } catch (err) {
        throwIfAborted(session.signal);
        if (idleFired) throw new TransientError(`no data for ${session.idleTimeoutMs / 1000} s`);
        throw new TransientError(`the connection broke after ${formatBytes(have)} of ${formatBytes(meta.size)} (${describeNetworkError(err)})`);
      }
      if (chunk.done) break;
      armIdle();
      const bytes = chunk.value;
      if (have + bytes.length > meta.size) {
        controller.abort();
        await handle.close().catch(() => undefined);
        handle = undefined;
        await truncate(incomplete);
        session.progress.set(meta.file, 0);
        throw new UserError(`was served with more bytes than the ${formatBytes(meta.size)} announced; the partial download was discarded.`,
          url, 'Try again; if it keeps happening, something between this machine and the Hub alters downloads.');
      }
      try {
        await handle.write(bytes);
      } catch (err) {
        throw fsUserError(err, incomplete, 'write the download');
      }
      hash?.state.update(bytes);
      have += bytes.length;
      if (hash) hash.upTo = have;
      session.progress.chunk(meta.file, have, bytes.length);
    }
    if (have < meta.size) throw new TransientError(`the server ended ${meta.file} after ${have} of ${meta.size} bytes`);
    try {
      await handle.sync(); // on disk before the rename publishes it: a crash cannot leave a complete-looking empty blob
    } catch (err) {
      throw fsUserError(err, incomplete, 'write the download');
    }
    return have;
  } finally {
    clearTimeout(idle);
    session.signal?.removeEventListener('abort', onAbort);
    await handle?.close().catch(() => undefined);
  }
}

/** Renames the complete download to its blob name (atomic: readers see all of it or nothing). */
async function publish(incomplete: string, blob: string, file: string): Promise<void> {
  try {
    await fsp.rename(incomplete, blob);
  } catch (err) {
    throw fsUserError(err, blob, `store ${file} in the cache`);
  }
}

/**
 * `snapshots/<commit>/<file>` → relative link to the blob (huggingface_hub `_create_symlink`),
 * made under a temporary name and renamed over the pointer, so concurrent downloads never see a
 * missing or half-made pointer. Where symlinks are not allowed (Windows without developer mode,
 * FAT drives) the file itself goes there, as huggingface_hub does: moved if this download made
 * the blob, copied otherwise.
 */
async function linkIntoSnapshot(blob: string, pointer: string, newBlob: boolean): Promise<void> {
  const dir = path.dirname(pointer);
  await makeDir(dir);
  const temp = path.join(dir, `.${path.basename(pointer)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    try {
      await fsp.symlink(path.relative(dir, blob), temp, 'file');
    } catch (err) {
      if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EINVAL'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
      if (newBlob) await fsp.rename(blob, temp);
      else await fsp.copyFile(blob, temp);
    }
    await fsp.rename(temp, pointer);
  } catch (err) {
    await fsp.rm(temp, { force: true }).catch(() => undefined);
    throw fsUserError(err, pointer, 'add the file to the cache snapshot');
  }
}

// --- locks ------------------------------------------------------------------------------------

interface LockOwner {
  pid: number;
  host: string;
  nonce: string;
}

/**
 * Runs `fn` holding an exclusive lock file (created with O_EXCL, so at most one process gets it).
 * Waiters poll; a lock is taken over when its owner's process is gone (same host) or it was not
 * refreshed for LOCK_STALE_MS (crash on another host sharing the cache).
 */
async function withLock<T>(lockPath: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
  await makeDir(path.dirname(lockPath));
  const me: LockOwner = { pid: process.pid, host: os.hostname(), nonce: randomBytes(8).toString('hex') };
  for (;;) {
    throwIfAborted(signal);
    try {
      await fsp.writeFile(lockPath, JSON.stringify(me), { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw fsUserError(err, lockPath, 'create the download lock');
    }
    const stale = await staleLockContent(lockPath);
    if (stale !== undefined) {
      // Remove it only if it is still the stale one (not a lock someone just took over).
      if ((await fsp.readFile(lockPath, 'utf8').catch(() => undefined)) === stale) await fsp.rm(lockPath, { force: true });
      continue;
    }
    await sleep(LOCK_POLL_MS, signal);
  }
  const refresh = setInterval(() => {
    const now = new Date();
    fsp.utimes(lockPath, now, now).catch(() => undefined);
  }, LOCK_REFRESH_MS);
  refresh.unref();
  try {
    return await fn();
  } finally {
    clearInterval(refresh);
    const content = await fsp.readFile(lockPath, 'utf8').catch(() => undefined);
    if (content === JSON.stringify(me)) await fsp.rm(lockPath, { force: true }).catch(() => undefined);
  }
}

/** The lock's content when its owner is gone, else undefined. */
async function staleLockContent(lockPath: string): Promise<string | undefined> {
  let content: string;
  let mtimeMs: number;
  try {
    [content, { mtimeMs }] = await Promise.all([fsp.readFile(lockPath, 'utf8'), fsp.stat(lockPath)]);
  } catch {
    return undefined; // released meanwhile: the next attempt takes it
  }
  if (Date.now() - mtimeMs > LOCK_STALE_MS) return content;
  try {
    const owner = JSON.parse(content) as Partial<LockOwner>;
    if (owner.host === os.hostname() && typeof owner.pid === 'number' && !processAlive(owner.pid)) return content;
  } catch {
    // being written right now (or garbage, which ages out through the mtime rule)
  }
  return undefined;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

// --- progress ---------------------------------------------------------------------------------

/**
 * Bytes per file, set absolutely (a resumed or restarted file simply reports what it now holds),
 * so nothing is counted twice; the rate counts only bytes that came over the network.
 */
class ProgressTracker {
  private readonly perFile = new Map<string, number>();
  private total = 0;
  /** Bytes that came over the network in this call. */
  downloaded = 0;
  private readonly samples: { time: number; downloaded: number }[] = [];
  private lastEmit = 0;
  private lastFile = '';

  constructor(private readonly repoId: string, private readonly onProgress: ((p: DownloadProgress) => void) | undefined) {}

  /** A file about to be fetched (size from its metadata). */
  expect(size: number): void {
    this.total += size;
  }

  /** A file already in the snapshot: counted in the total and as present. */
  present(file: string, size: number): void {
    this.total += size;
    this.set(file, size);
  }

  /** What `file` now holds (resumed prefix, 0 after a restart, its size once complete). */
  set(file: string, bytes: number): void {
    this.perFile.set(file, bytes);
    this.emit(file, true);
  }

  chunk(file: string, bytes: number, received: number): void {
    this.perFile.set(file, bytes);
    this.downloaded += received;
    this.emit(file, false);
  }

  finish(): void {
    this.emit(this.lastFile, true);
  }

  private emit(file: string, force: boolean): void {
    this.lastFile = file;
    if (!this.onProgress) return;
    const now = Date.now();
    this.samples.push({ time: now, downloaded: this.downloaded });
    while (this.samples.length > 2 && this.samples[0]!.time < now - RATE_WINDOW_MS) this.samples.shift();
    if (!force && now - this.lastEmit < PROGRESS_INTERVAL_MS) return;
    this.lastEmit = now;
    const first = this.samples[0]!;
    const seconds = (now - first.time) / 1000;
    const rate = seconds > 0 ? (this.downloaded - first.downloaded) / seconds : 0;
    let bytes = 0;
    for (const n of this.perFile.values()) bytes += n;
    this.onProgress({ repoId: this.repoId, file, bytes, total: Math.max(this.total, bytes), rate });
  }
}

// --- small helpers ----------------------------------------------------------------------------

/** Size of the file at `file` (following links), or undefined when there is none (or a broken link). */
async function existingFileSize(file: string): Promise<number | undefined> {
  try {
    const stat = await fsp.stat(file);
    return stat.isFile() ? stat.size : undefined;
  } catch {
    return undefined;
  }
}

async function makeDir(dir: string): Promise<void> {
  try {
    await fsp.mkdir(dir, { recursive: true });
  } catch (err) {
    const e = fsUserError(err, dir, 'create the cache folder');
    if (e instanceof UserError && !e.hint) throw new UserError(e.message, undefined, 'Set HF_HUB_CACHE to a folder you can write to.');
    throw e;
  }
}

async function truncate(file: string): Promise<void> {
  try {
    await fsp.truncate(file, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fsUserError(err, file, 'restart the download');
  }
}

/** sha256 state over the first `length` bytes of `file` (a resumed download's existing part). */
async function hashPrefix(file: string, length: number): Promise<Hash> {
  const hash = createHash('sha256');
  if (length === 0) return hash;
  const handle = await fsp.open(file, 'r');
  try {
    const buffer = Buffer.allocUnsafe(Math.min(length, 8 << 20));
    for (let pos = 0; pos < length;) {
      const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, length - pos), pos);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      pos += bytesRead;
    }
  } finally {
    await handle.close();
  }
  return hash;
}

/**
 * Runs the tasks (in parallel, or one after the other) and waits for all of them before
 * reporting the first failure, so nothing is still writing when the caller moves on.
 */
async function settleAll<T>(tasks: readonly (() => Promise<T>)[], sequential: boolean): Promise<T[]> {
  if (sequential) {
    const out: T[] = [];
    for (const task of tasks) out.push(await task());
    return out;
  }
  const results = await Promise.allSettled(tasks.map((t) => t()));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new CancelledError('Download cancelled.');
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  throwIfAborted(signal);
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new CancelledError('Download cancelled.'));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
