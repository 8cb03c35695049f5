/**
 * Downloads against a local mock of the Hub (hub-mock.ts): the cache must end up exactly as
 * huggingface_hub lays it out, and every way a download can go wrong must leave no partial file
 * visible in a snapshot. Nothing here touches the real network or the real home cache: every
 * call gets an explicit env with HF_HOME / HF_HUB_CACHE in temp folders.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CancelledError } from '../../../src/core/errors';
import { Checkpoint } from '../../../src/core/io/checkpoint';
import { resolveModelReference } from '../../../src/core/io/hub-cache';
import { downloadModel, formatBytes, type DownloadOptions, type DownloadProgress } from '../../../src/core/io/hub-download';
import { expectUserError, makeTempDir, removeTempDirs } from './helpers';
import { MockHub, commitOf, etagOf, fixtureRepo, gitBlobSha1, sha256, type MockRepo } from './hub-mock';

const VIT_FILES = ['config.json', 'preprocessor_config.json', 'model.safetensors'];
const CLIP_SHARDED_FILES = [
  'config.json', 'preprocessor_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json',
  'vocab.json', 'merges.txt', 'model.safetensors.index.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors',
];
/** What real repos also hold and must never be downloaded. */
const NEVER_DOWNLOADED = {
  'README.md': Buffer.from('---\nlicense: apache-2.0\n---\n# vit-tiny\n'),
  '.gitattributes': Buffer.from('*.safetensors filter=lfs diff=lfs merge=lfs -text\n'),
  'pytorch_model.bin': Buffer.from([0x80, 0x02, 0x7d, 0x71, 0x00, 0x2e]),
  'tf_model.h5': Buffer.from('\x89HDF\r\n\x1a\n'),
};
const TOKEN = 'hf_mock_token_for_tests';

function repos(): Record<string, MockRepo> {
  const vit = fixtureRepo('vit-tiny', VIT_FILES, NEVER_DOWNLOADED);
  return {
    'tiny-org/vit-tiny': { ...vit, refs: { main: commitOf('tiny-org/vit-tiny', 'main'), v1: commitOf('tiny-org/vit-tiny', 'v1') } },
    'tiny-org/clip-sharded': fixtureRepo('clip-bf16-sharded', CLIP_SHARDED_FILES),
    'gated-org/vit-tiny': { ...vit, gatedToken: TOKEN },
    'pickle-org/vit-bin': { files: { 'config.json': vit.files['config.json']!, 'pytorch_model.bin': NEVER_DOWNLOADED['pytorch_model.bin'] } },
    'tiny-org/swin': { files: { 'config.json': Buffer.from('{"model_type": "swin"}'), 'model.safetensors': vit.files['model.safetensors']! } },
  };
}

let mock: MockHub;
let home: string;
let cache: string;

/** Options pointing at the mock and the test's temp cache; fast retries so failure tests stay quick. */
function options(extra: DownloadOptions = {}): DownloadOptions {
  return { env: { HF_HOME: home, HF_HUB_CACHE: cache, HF_ENDPOINT: mock.endpoint }, retryDelayMs: 5, ...extra };
}

const VIT = fixtureRepo('vit-tiny', VIT_FILES).files;
const VIT_WEIGHTS_SHA = sha256(VIT['model.safetensors']!);

/**
 * The cache as a sorted list of lines: folders end in '/', symlinks show their target text,
 * files their sha256 — enough to compare layouts file by file.
 */
function listTree(root: string): string[] {
  const lines: string[] = [];
  const walk = (dir: string, rel: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      const name = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isSymbolicLink()) lines.push(`${name} -> ${fs.readlinkSync(full)}`);
      else if (entry.isDirectory()) {
        lines.push(`${name}/`);
        walk(full, name);
      } else lines.push(`${name} sha256:${sha256(fs.readFileSync(full))}`);
    }
  };
  walk(root, '');
  return lines.sort();
}

/** The layout huggingface_hub writes for `files` of `repoId` at `commit`, derived from the file contents alone. */
function expectedTree(repoId: string, revisions: Record<string, string>, files: Record<string, Buffer>): string[] {
  const repoDir = `models--${repoId.replace('/', '--')}`;
  const lines = ['.locks/', `.locks/${repoDir}/`, `${repoDir}/`, `${repoDir}/blobs/`, `${repoDir}/refs/`, `${repoDir}/snapshots/`];
  for (const bytes of new Set(Object.entries(files).map(([name, bytes]) => `${etagOf(name, bytes)} sha256:${sha256(bytes)}`))) {
    lines.push(`${repoDir}/blobs/${bytes}`);
  }
  for (const [revision, commit] of Object.entries(revisions)) {
    lines.push(`${repoDir}/refs/${revision} sha256:${sha256(Buffer.from(commit))}`);
    lines.push(`${repoDir}/snapshots/${commit}/`);
    for (const [name, bytes] of Object.entries(files)) lines.push(`${repoDir}/snapshots/${commit}/${name} -> ../../blobs/${etagOf(name, bytes)}`);
  }
  return [...new Set(lines)].sort();
}

describe('io/hub-download (against a local mock hub)', () => {
  before(async () => {
    mock = await MockHub.start(repos());
  });
  after(async () => {
    await mock.close();
    removeTempDirs();
  });
  beforeEach(() => {
    mock.reset();
    home = makeTempDir();
    cache = path.join(makeTempDir(), 'hub'); // not created yet: the downloader makes it
  });

  it('writes the cache exactly as huggingface_hub does: blobs by etag, relative symlinks, refs/main', async () => {
    const result = await downloadModel('tiny-org/vit-tiny', options());
    const commit = commitOf('tiny-org/vit-tiny', 'main');
    assert.equal(result.commit, commit);
    assert.equal(result.folder, path.join(cache, 'models--tiny-org--vit-tiny', 'snapshots', commit));
    assert.deepEqual(listTree(cache), expectedTree('tiny-org/vit-tiny', { main: commit }, VIT));
    // Spelled out once, independently of etagOf: safetensors (LFS) by sha256, JSON (git) by git blob sha1.
    const snapshot = result.folder;
    assert.equal(fs.readlinkSync(path.join(snapshot, 'model.safetensors')), `../../blobs/${VIT_WEIGHTS_SHA}`);
    assert.equal(fs.readlinkSync(path.join(snapshot, 'config.json')), `../../blobs/${gitBlobSha1(VIT['config.json']!)}`);
    assert.equal(fs.readFileSync(path.join(cache, 'models--tiny-org--vit-tiny', 'refs', 'main'), 'utf8'), commit); // no newline
    for (const name of VIT_FILES) assert.ok(fs.readFileSync(path.join(snapshot, name)).equals(VIT[name]!), name);

    // Files were fetched by commit (not by the moving branch), and nothing else was fetched.
    const fetched = mock.requests.filter((r) => r.server === 'hub' && r.path.includes('/resolve/'));
    assert.ok(fetched.every((r) => r.path.startsWith(`/tiny-org/vit-tiny/resolve/${commit}/`)), fetched.map((r) => r.path).join('\n'));
    const names = new Set(fetched.map((r) => r.path.split('/').pop()));
    assert.deepEqual([...names].sort(), [...VIT_FILES].sort());
    assert.equal(result.downloadedBytes, VIT_FILES.reduce((n, f) => n + VIT[f]!.length, 0));
  });

  it('gives Checkpoint.open a folder whose weights resolve into blobs/ (what ORT external data needs)', async () => {
    const { folder } = await downloadModel('tiny-org/vit-tiny', options());
    const checkpoint = await Checkpoint.open(folder);
    assert.equal(checkpoint.modelType, 'vit');
    assert.deepEqual(checkpoint.weightFilePaths(), [fs.realpathSync(path.join(cache, 'models--tiny-org--vit-tiny', 'blobs', VIT_WEIGHTS_SHA))]);
  });

  it('downloads a sharded checkpoint (index, then the shards it names) with its tokenizer files', async () => {
    const { folder, files } = await downloadModel('tiny-org/clip-sharded', options());
    assert.deepEqual([...files].sort(), [...CLIP_SHARDED_FILES].sort());
    const checkpoint = await Checkpoint.open(folder);
    assert.equal(checkpoint.weightFilePaths().length, 2);
    const commit = commitOf('tiny-org/clip-sharded', 'main');
    assert.deepEqual(listTree(cache), expectedTree('tiny-org/clip-sharded', { main: commit }, fixtureRepo('clip-bf16-sharded', CLIP_SHARDED_FILES).files));
  });

  it('a second run transfers nothing: no file requests, and resolving the id makes no request at all', async () => {
    await downloadModel('tiny-org/vit-tiny', options());
    mock.reset();
    const again = await downloadModel('tiny-org/vit-tiny', options());
    assert.equal(again.downloadedBytes, 0);
    assert.deepEqual(mock.requests.map((r) => `${r.method} ${r.path}`), ['GET /api/models/tiny-org/vit-tiny/revision/main']);
    mock.reset();
    const resolved = await resolveModelReference('tiny-org/vit-tiny', options());
    assert.equal(resolved.source, 'cache');
    assert.equal(resolved.folder, again.folder);
    assert.equal(mock.requests.length, 0);
  });

  it('completes a snapshot that holds only config.json (as transformers\' AutoConfig leaves it)', async () => {
    const storage = path.join(cache, 'models--tiny-org--vit-tiny');
    const commit = commitOf('tiny-org/vit-tiny', 'main');
    const configEtag = gitBlobSha1(VIT['config.json']!);
    fs.mkdirSync(path.join(storage, 'blobs'), { recursive: true });
    fs.mkdirSync(path.join(storage, 'snapshots', commit), { recursive: true });
    fs.mkdirSync(path.join(storage, 'refs'));
    fs.writeFileSync(path.join(storage, 'blobs', configEtag), VIT['config.json']!);
    fs.symlinkSync(`../../blobs/${configEtag}`, path.join(storage, 'snapshots', commit, 'config.json'));
    fs.writeFileSync(path.join(storage, 'refs', 'main'), commit);

    const resolved = await resolveModelReference('tiny-org/vit-tiny', options());
    assert.equal(resolved.source, 'download');
    assert.deepEqual(mock.contentRequests().map((r) => r.path.split('/').pop()!.split('?')[0]).sort(),
      ['model.safetensors', 'preprocessor_config.json', VIT_WEIGHTS_SHA].sort()); // hub GET + CDN GET for the weights
    assert.deepEqual(listTree(cache), expectedTree('tiny-org/vit-tiny', { main: commit }, VIT));
  });

  it('another revision reuses the blobs it shares and gets its own snapshot and ref', async () => {
    await downloadModel('tiny-org/vit-tiny', options());
    mock.reset();
    const v1 = await downloadModel('tiny-org/vit-tiny', options({ revision: 'v1' }));
    assert.equal(v1.commit, commitOf('tiny-org/vit-tiny', 'v1'));
    assert.equal(mock.contentRequests().length, 0);
    assert.deepEqual(listTree(cache), expectedTree('tiny-org/vit-tiny',
      { main: commitOf('tiny-org/vit-tiny', 'main'), v1: v1.commit }, VIT));
  });

  it('sends the token to the Hub but not to the CDN it redirects to', async () => {
    const { folder } = await downloadModel('gated-org/vit-tiny', options({ env: { ...options().env, HF_TOKEN: TOKEN } }));
    assert.ok(fs.existsSync(path.join(folder, 'model.safetensors')));
    const hub = mock.requests.filter((r) => r.server === 'hub');
    const cdn = mock.requests.filter((r) => r.server === 'cdn');
    assert.ok(cdn.length > 0);
    assert.ok(hub.every((r) => r.headers.authorization === `Bearer ${TOKEN}`));
    assert.ok(cdn.every((r) => r.headers.authorization === undefined));
  });

  it('reads the token from $HF_HOME/token as `hf auth login` stores it', async () => {
    fs.writeFileSync(path.join(home, 'token'), `${TOKEN}\n`);
    const { folder } = await downloadModel('gated-org/vit-tiny', options());
    assert.ok(fs.existsSync(path.join(folder, 'model.safetensors')));
  });

  it('a gated repo without access says to accept the licence and set HF_TOKEN', async () => {
    const err = await expectUserError(() => downloadModel('gated-org/vit-tiny', options()),
      'gated-org/vit-tiny', 'gated', 'needs a Hugging Face token', 'Accept its licence', `${mock.endpoint}/gated-org/vit-tiny`, 'HF_TOKEN');
    assert.ok(!err.message.includes(TOKEN));
    await expectUserError(() => downloadModel('gated-org/vit-tiny', options({ token: 'hf_wrong' })), 'your token has no access', 'HF_TOKEN');
    assert.equal(mock.contentRequests().filter((r) => r.server === 'cdn').length, 0);
  });

  it('an unknown repo or revision is a clear error (404 / RepoNotFound)', async () => {
    await expectUserError(() => downloadModel('nobody/nothing', options()), 'nobody/nothing', 'not found on the Hugging Face Hub', 'HF_TOKEN');
    await expectUserError(() => downloadModel('tiny-org/vit-tiny', options({ revision: 'no-such-branch' })), 'no revision "no-such-branch"');
    assert.equal(fs.existsSync(path.join(cache, 'models--nobody--nothing')), false);
    // Typed where a model is expected, "nobody/nothing" may be a mistyped folder: the message says both.
    await expectUserError(() => resolveModelReference('nobody/nothing', { ...options(), cwd: home }),
      'not found on the Hugging Face Hub', `There is no folder ${path.join(home, 'nobody', 'nothing')} either.`);
  });

  it('refuses a pickle-only repo before downloading anything, pointing to safetensors', async () => {
    await expectUserError(() => downloadModel('pickle-org/vit-bin', options()), 'pickle-org/vit-bin', 'pytorch_model.bin', 'never loaded', 'safetensors',
      'pickle-org/vit-bin@refs/pr/');
    assert.deepEqual(mock.requests.map((r) => r.path), ['/api/models/pickle-org/vit-bin/revision/main']);
  });

  it('refuses an unsupported model_type after config.json, before the weights', async () => {
    await expectUserError(() => downloadModel('tiny-org/swin', options({ modelTypes: ['vit', 'clip'] })), 'config.json', '"swin"', 'vit, clip');
    assert.ok(mock.contentRequests().every((r) => r.path.endsWith('/config.json')));
  });

  it('resumes a dropped connection with a Range request and ends with intact bytes', async () => {
    mock.cdnBehaviour.set(VIT_WEIGHTS_SHA, { dropAfter: { bytes: 30_000 } });
    const { folder } = await downloadModel('tiny-org/vit-tiny', options());
    assert.ok(fs.readFileSync(path.join(folder, 'model.safetensors')).equals(VIT['model.safetensors']!));
    const cdn = mock.requests.filter((r) => r.server === 'cdn');
    assert.deepEqual(cdn.map((r) => r.headers.range), [undefined, 'bytes=30000-']);
  });

  it('an interrupted run leaves only blobs/<etag>.incomplete; the next run resumes it', async () => {
    mock.cdnBehaviour.set(VIT_WEIGHTS_SHA, { dropAfter: { bytes: 30_000 } });
    await expectUserError(() => downloadModel('tiny-org/vit-tiny', options({ retries: 0 })), 'model.safetensors', 'connection broke', 'resumes');
    const storage = path.join(cache, 'models--tiny-org--vit-tiny');
    const snapshot = path.join(storage, 'snapshots', commitOf('tiny-org/vit-tiny', 'main'));
    assert.equal(fs.existsSync(path.join(snapshot, 'model.safetensors')), false);
    assert.equal(fs.existsSync(path.join(storage, 'refs', 'main')), false); // refs only once the snapshot is complete
    assert.equal(fs.statSync(path.join(storage, 'blobs', `${VIT_WEIGHTS_SHA}.incomplete`)).size, 30_000);
    assert.deepEqual(fs.readdirSync(path.join(cache, '.locks', 'models--tiny-org--vit-tiny')), []);

    mock.reset();
    const { folder } = await downloadModel('tiny-org/vit-tiny', options());
    assert.ok(fs.readFileSync(path.join(folder, 'model.safetensors')).equals(VIT['model.safetensors']!));
    assert.deepEqual(mock.requests.filter((r) => r.server === 'cdn').map((r) => r.headers.range), ['bytes=30000-']);
  });

  it('restarts cleanly when the server ignores Range', async () => {
    const incomplete = path.join(cache, 'models--tiny-org--vit-tiny', 'blobs', `${VIT_WEIGHTS_SHA}.incomplete`);
    fs.mkdirSync(path.dirname(incomplete), { recursive: true });
    fs.writeFileSync(incomplete, VIT['model.safetensors']!.subarray(0, 20_000));
    mock.cdnBehaviour.set(VIT_WEIGHTS_SHA, { ignoreRange: true });
    const { folder } = await downloadModel('tiny-org/vit-tiny', options());
    assert.ok(fs.readFileSync(path.join(folder, 'model.safetensors')).equals(VIT['model.safetensors']!));
    assert.equal(mock.requests.find((r) => r.server === 'cdn')!.headers.range, 'bytes=20000-');
  });

  it('drops a stalled connection after the idle timeout and resumes', async () => {
    mock.cdnBehaviour.set(VIT_WEIGHTS_SHA, { stallAfter: 10_000 });
    const { folder } = await downloadModel('tiny-org/vit-tiny', options({ idleTimeoutMs: 300 }));
    assert.ok(fs.readFileSync(path.join(folder, 'model.safetensors')).equals(VIT['model.safetensors']!));
    // slice: on a loaded machine the resumed request may itself pause past 300 ms and be resumed again
    assert.deepEqual(mock.requests.filter((r) => r.server === 'cdn').map((r) => r.headers.range).slice(0, 2), [undefined, 'bytes=10000-']);
  });

  it('never publishes bytes that do not match the sha256 etag: one clean retry, then an error', async () => {
    mock.cdnBehaviour.set(VIT_WEIGHTS_SHA, { corrupt: { times: 1 } });
    const { folder } = await downloadModel('tiny-org/vit-tiny', options());
    assert.ok(fs.readFileSync(path.join(folder, 'model.safetensors')).equals(VIT['model.safetensors']!));

    cache = path.join(makeTempDir(), 'hub');
    mock.cdnBehaviour.set(VIT_WEIGHTS_SHA, { corrupt: { times: 2 } });
    await expectUserError(() => downloadModel('tiny-org/vit-tiny', options()), 'model.safetensors', 'did not match its sha256');
    const blobs = fs.readdirSync(path.join(cache, 'models--tiny-org--vit-tiny', 'blobs'));
    assert.ok(!blobs.includes(VIT_WEIGHTS_SHA) && !blobs.includes(`${VIT_WEIGHTS_SHA}.incomplete`), blobs.join(', '));
  });

  it('cancels promptly on a slow server, keeps the partial file for later, and leaves no lock', async () => {
    mock.cdnBehaviour.set(VIT_WEIGHTS_SHA, { slow: { bytes: 1000, intervalMs: 20 } }); // ≈1.5 s for the whole file
    const controller = new AbortController();
    const started = Date.now();
    let caught: unknown;
    try {
      await downloadModel('tiny-org/vit-tiny', options({
        signal: controller.signal,
        onProgress: (p) => {
          if (p.file === 'model.safetensors' && p.bytes > 4000) controller.abort(); // the small files are ≈1.2 kB
        },
      }));
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof CancelledError, String(caught));
    assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
    const storage = path.join(cache, 'models--tiny-org--vit-tiny');
    assert.equal(fs.existsSync(path.join(storage, 'snapshots', commitOf('tiny-org/vit-tiny', 'main'), 'model.safetensors')), false);
    assert.ok(fs.statSync(path.join(storage, 'blobs', `${VIT_WEIGHTS_SHA}.incomplete`)).size > 0);
    assert.deepEqual(fs.readdirSync(path.join(cache, '.locks', 'models--tiny-org--vit-tiny')), []);

    mock.reset();
    const { folder } = await downloadModel('tiny-org/vit-tiny', options());
    assert.ok(fs.readFileSync(path.join(folder, 'model.safetensors')).equals(VIT['model.safetensors']!));
    assert.match(mock.requests.find((r) => r.server === 'cdn')!.headers.range ?? '', /^bytes=[1-9]\d*-$/);
  });

  it('a full disk is one clear error and leaves no blob visible in the snapshot', async function () {
    if (process.platform !== 'linux') this.skip(); // /dev/full: writes fail with ENOSPC
    const blobs = path.join(cache, 'models--tiny-org--vit-tiny', 'blobs');
    fs.mkdirSync(blobs, { recursive: true });
    fs.symlinkSync('/dev/full', path.join(blobs, `${VIT_WEIGHTS_SHA}.incomplete`));
    await expectUserError(() => downloadModel('tiny-org/vit-tiny', options()), `${VIT_WEIGHTS_SHA}.incomplete`, 'no space left', 'Free some disk space');
    const snapshot = path.join(cache, 'models--tiny-org--vit-tiny', 'snapshots', commitOf('tiny-org/vit-tiny', 'main'));
    assert.deepEqual(fs.readdirSync(snapshot).sort(), ['config.json', 'preprocessor_config.json']);
    assert.equal(fs.existsSync(path.join(blobs, VIT_WEIGHTS_SHA)), false);
  });

  it('a cache location that cannot be written is one clear error naming it', async () => {
    fs.writeFileSync(path.dirname(cache) + '/hub', 'a file where the cache folder should be');
    await expectUserError(() => downloadModel('tiny-org/vit-tiny', options()), cache, 'cannot create the cache folder');
  });

  it('two concurrent downloads of the same repo both succeed, with one transfer of each file', async () => {
    mock.cdnBehaviour.set(VIT_WEIGHTS_SHA, { slow: { bytes: 8000, intervalMs: 10 } }); // long enough to overlap
    const [a, b] = await Promise.all([downloadModel('tiny-org/vit-tiny', options()), downloadModel('tiny-org/vit-tiny', options())]);
    assert.equal(a.folder, b.folder);
    for (const name of VIT_FILES) assert.ok(fs.readFileSync(path.join(a.folder, name)).equals(VIT[name]!), name);
    assert.equal(mock.requests.filter((r) => r.server === 'cdn').length, 1);
    assert.deepEqual(listTree(cache), expectedTree('tiny-org/vit-tiny', { main: commitOf('tiny-org/vit-tiny', 'main') }, VIT));
  });

  it('takes over a lock left by a process that died', async () => {
    const dead = spawnSync(process.execPath, ['-e', '']).pid!; // exited: its pid names no process now
    const locks = path.join(cache, '.locks', 'models--tiny-org--vit-tiny');
    fs.mkdirSync(locks, { recursive: true });
    fs.writeFileSync(path.join(locks, `${VIT_WEIGHTS_SHA}.vision-inspector.lock`), JSON.stringify({ pid: dead, host: os.hostname(), nonce: 'x' }));
    const { folder } = await downloadModel('tiny-org/vit-tiny', options());
    assert.ok(fs.readFileSync(path.join(folder, 'model.safetensors')).equals(VIT['model.safetensors']!));
    assert.deepEqual(fs.readdirSync(locks), []);
  });

  it('reports progress: bytes only grow, end at the total of all files, with a rate', async () => {
    mock.cdnBehaviour.set(VIT_WEIGHTS_SHA, { slow: { bytes: 8000, intervalMs: 10 } });
    const events: DownloadProgress[] = [];
    await downloadModel('tiny-org/vit-tiny', options({ onProgress: (p) => events.push({ ...p }) }));
    const total = VIT_FILES.reduce((n, f) => n + VIT[f]!.length, 0);
    assert.ok(events.length >= 3);
    for (let i = 1; i < events.length; i++) assert.ok(events[i]!.bytes >= events[i - 1]!.bytes);
    const last = events.at(-1)!;
    assert.equal(last.bytes, total);
    assert.equal(last.total, total);
    assert.equal(last.repoId, 'tiny-org/vit-tiny');
    assert.ok(events.some((e) => e.file === 'model.safetensors' && e.rate > 0));
    // The total is final before the weights start: a progress bar never jumps back.
    assert.ok(events.filter((e) => e.file === 'model.safetensors').every((e) => e.total === total));
  });

  it('offline (HF_HUB_OFFLINE=1) never touches the network', async () => {
    await expectUserError(() => downloadModel('tiny-org/vit-tiny', options({ env: { ...options().env, HF_HUB_OFFLINE: '1' } })), 'offline', 'HF_HUB_OFFLINE');
    assert.equal(mock.requests.length, 0);
  });

  it('formats sizes as the Hub does', () => {
    assert.equal(formatBytes(999), '999 B');
    assert.equal(formatBytes(74_140), '74.1 kB');
    assert.equal(formatBytes(346_351_599), '346 MB');
    assert.equal(formatBytes(9_400_000_000), '9.40 GB');
  });
});
