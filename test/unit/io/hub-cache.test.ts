/**
 * Discovery: the cache folder as huggingface_hub resolves it, listing a cache laid out by hand the
 * way huggingface_hub writes it (symlinks, copies, refs, partial snapshots), workspace folders,
 * and turning what the user typed into a model folder without touching the network when the
 * cache has the model. The endpoint in these tests is a closed port: any request would fail.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  findWorkspaceModels, hubCacheDir, isLoadable, listCachedModels, parseHubReference, readHubToken, resolveModelReference,
  type ResolveOptions,
} from '../../../src/core/io/hub-cache';
import { modelDisplayName } from '../../../src/core/io/hub-layout';
import { GOLDEN, expectUserError, makeTempDir, removeTempDirs } from './helpers';
import { etagOf } from './hub-mock';

const C_MAIN = 'a'.repeat(40);
const C_OLD = 'b'.repeat(40);
const C_PR = 'c'.repeat(40);

/**
 * Adds `files` (name → fixture path) to snapshots/<commit> of `repoFolder`, as huggingface_hub
 * does: the bytes in blobs/<etag>, a relative symlink in the snapshot — or, with `copies`, the
 * file itself in the snapshot (file systems without symlinks).
 */
function addSnapshot(cache: string, repoFolder: string, commit: string, files: Record<string, string | Buffer>, options: { refs?: string[]; copies?: boolean } = {}): string {
  const storage = path.join(cache, repoFolder);
  const snapshot = path.join(storage, 'snapshots', commit);
  fs.mkdirSync(snapshot, { recursive: true });
  fs.mkdirSync(path.join(storage, 'blobs'), { recursive: true });
  for (const [name, source] of Object.entries(files)) {
    const bytes = typeof source === 'string' ? fs.readFileSync(source) : source;
    if (options.copies) {
      fs.writeFileSync(path.join(snapshot, name), bytes);
    } else {
      fs.writeFileSync(path.join(storage, 'blobs', etagOf(name, bytes)), bytes);
      fs.symlinkSync(`../../blobs/${etagOf(name, bytes)}`, path.join(snapshot, name));
    }
  }
  for (const ref of options.refs ?? []) {
    fs.mkdirSync(path.dirname(path.join(storage, 'refs', ref)), { recursive: true });
    fs.writeFileSync(path.join(storage, 'refs', ref), commit);
  }
  return snapshot;
}

const vit = (name: string): string => path.join(GOLDEN, 'vit-tiny', name);
const clip = (name: string): string => path.join(GOLDEN, 'clip-tiny', name);
const VIT_MODEL = { 'config.json': vit('config.json'), 'preprocessor_config.json': vit('preprocessor_config.json'), 'model.safetensors': vit('model.safetensors') };
const size = (file: string): number => fs.statSync(file).size;

describe('io/hub-cache', () => {
  after(removeTempDirs);

  describe('where the cache is (as huggingface_hub resolves it)', () => {
    const home = os.homedir();
    it('HF_HUB_CACHE, else HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub', () => {
      assert.equal(hubCacheDir({ HF_HUB_CACHE: '/c/hub', HUGGINGFACE_HUB_CACHE: '/legacy', HF_HOME: '/h', XDG_CACHE_HOME: '/x' }), '/c/hub');
      assert.equal(hubCacheDir({ HUGGINGFACE_HUB_CACHE: '/legacy', HF_HOME: '/h' }), '/legacy');
      assert.equal(hubCacheDir({ HF_HOME: '/h', XDG_CACHE_HOME: '/x' }), path.join('/h', 'hub'));
      assert.equal(hubCacheDir({ XDG_CACHE_HOME: '/x' }), path.join('/x', 'huggingface', 'hub'));
      assert.equal(hubCacheDir({}), path.join(home, '.cache', 'huggingface', 'hub'));
    });

    it('expands ~ and $VARS as Python does, and treats empty variables as unset', () => {
      assert.equal(hubCacheDir({ HF_HOME: '~/hf' }), path.join(home, 'hf', 'hub'));
      assert.equal(hubCacheDir({ HF_HUB_CACHE: '$SCRATCH/hub', SCRATCH: '/scratch' }), '/scratch/hub');
      assert.equal(hubCacheDir({ HF_HUB_CACHE: '${SCRATCH}/hub', SCRATCH: '/s' }), '/s/hub');
      assert.equal(hubCacheDir({ HF_HUB_CACHE: '', HF_HOME: '/h' }), path.join('/h', 'hub'));
    });

    it('finds the token in HF_TOKEN, then the legacy variable, then $HF_HOME/token', async () => {
      const hfHome = makeTempDir();
      assert.equal(await readHubToken({ HF_HOME: hfHome }), undefined);
      fs.writeFileSync(path.join(hfHome, 'token'), '  hf_file\n');
      assert.equal(await readHubToken({ HF_HOME: hfHome }), 'hf_file');
      assert.equal(await readHubToken({ HF_HOME: hfHome, HUGGING_FACE_HUB_TOKEN: 'hf_legacy' }), 'hf_legacy');
      assert.equal(await readHubToken({ HF_HOME: hfHome, HF_TOKEN: 'hf_env', HUGGING_FACE_HUB_TOKEN: 'hf_legacy' }), 'hf_env');
      assert.equal(await readHubToken({ HF_TOKEN_PATH: path.join(hfHome, 'token'), HF_HOME: '/nowhere' }), 'hf_file');
    });
  });

  it('names a cache snapshot by its hub id and any other folder by its name', () => {
    assert.equal(modelDisplayName(path.join('/c', 'models--google--vit-tiny', 'snapshots', 'a'.repeat(40))), 'google/vit-tiny');
    assert.equal(modelDisplayName(path.join('/work', 'my-vit')), 'my-vit');
  });

  it('parses hub ids with an optional @revision, and nothing else', () => {
    assert.deepEqual(parseHubReference('google/vit-base-patch16-224'), { repoId: 'google/vit-base-patch16-224', revision: 'main' });
    assert.deepEqual(parseHubReference('openai/clip-vit-base-patch32@refs/pr/12'), { repoId: 'openai/clip-vit-base-patch32', revision: 'refs/pr/12' });
    assert.deepEqual(parseHubReference(`adept/fuyu-8b@${C_MAIN}`), { repoId: 'adept/fuyu-8b', revision: C_MAIN });
    for (const bad of ['vit-tiny', './org/name', '/abs/path', 'a/b/c', 'org--x/name', 'org/.name', 'org/name-', 'org/na..me', 'org/name@', 'org/name@../x', 'C:\\models\\vit']) {
      assert.equal(parseHubReference(bad), undefined, bad);
    }
  });

  describe('listCachedModels', () => {
    let cache: string;
    before(() => {
      cache = makeTempDir();
      addSnapshot(cache, 'models--google--vit-tiny', C_MAIN, VIT_MODEL, { refs: ['main'] });
      addSnapshot(cache, 'models--google--vit-tiny', C_OLD, { 'config.json': vit('config.json') }); // AutoConfig only, an older commit
      addSnapshot(cache, 'models--openai--clip-tiny', C_MAIN, {
        'config.json': clip('config.json'), 'tokenizer.json': clip('tokenizer.json'), 'model.safetensors': clip('model.safetensors'),
      }, { refs: ['main'], copies: true });
      addSnapshot(cache, 'models--old--pickled', C_MAIN, { 'config.json': vit('config.json'), 'pytorch_model.bin': Buffer.from([0x80, 0x02]) }, { refs: ['main'] });
      addSnapshot(cache, 'models--pr--vit', C_PR, VIT_MODEL, { refs: ['refs/pr/1'] });
      const broken = addSnapshot(cache, 'models--gone--blob', C_MAIN, VIT_MODEL, { refs: ['main'] });
      fs.rmSync(fs.realpathSync(path.join(broken, 'model.safetensors'))); // e.g. a cache cleaner deleted the blob
      addSnapshot(cache, 'datasets--some--data', C_MAIN, { 'config.json': vit('config.json') }, { refs: ['main'] });
      fs.mkdirSync(path.join(cache, '.locks', 'models--google--vit-tiny'), { recursive: true });
    });

    it('lists every model snapshot with its refs, model_type, files and size; skips datasets and .locks', async () => {
      const models = await listCachedModels(cache);
      assert.deepEqual(models.map((m) => `${m.repoId} ${m.commit.slice(0, 1)} [${m.refs.join(',')}]`), [
        'gone/blob a [main]',
        'google/vit-tiny a [main]',
        'google/vit-tiny b []', // main's snapshot first
        'old/pickled a [main]',
        'openai/clip-tiny a [main]',
        'pr/vit c [refs/pr/1]',
      ]);
      const [gone, vitMain, vitOld, pickled, clipModel, pr] = models;
      assert.equal(vitMain!.modelType, 'vit');
      assert.equal(vitMain!.folder, path.join(cache, 'models--google--vit-tiny', 'snapshots', C_MAIN));
      assert.deepEqual(vitMain!.files, { config: true, preprocessor: true, tokenizer: false, safetensors: true, pickleOnly: false });
      assert.equal(vitMain!.sizeBytes, Object.values(VIT_MODEL).reduce((n, f) => n + size(f), 0));
      assert.ok(isLoadable(vitMain!.files));
      assert.deepEqual(vitOld!.files, { config: true, preprocessor: false, tokenizer: false, safetensors: false, pickleOnly: false });
      assert.ok(!isLoadable(vitOld!.files));
      assert.equal(clipModel!.modelType, 'clip');
      assert.deepEqual(clipModel!.files, { config: true, preprocessor: false, tokenizer: true, safetensors: true, pickleOnly: false });
      assert.equal(pickled!.files.pickleOnly, true);
      assert.ok(!isLoadable(pickled!.files));
      assert.ok(isLoadable(pr!.files));
      assert.equal(gone!.files.safetensors, false); // a dangling link is a missing file
      assert.equal(gone!.sizeBytes, size(vit('config.json')) + size(vit('preprocessor_config.json')));
    });

    it('an absent cache is an empty list', async () => {
      assert.deepEqual(await listCachedModels(path.join(cache, 'no-such-folder')), []);
    });
  });

  it('findWorkspaceModels finds model folders, skipping node_modules and hidden folders, within the depth bound', async () => {
    const root = makeTempDir();
    const model = (rel: string, files: Record<string, string> = VIT_MODEL): string => {
      const dir = path.join(root, rel);
      fs.mkdirSync(dir, { recursive: true });
      for (const [name, source] of Object.entries(files)) fs.copyFileSync(source, path.join(dir, name));
      return dir;
    };
    const a = model('models/vit');
    fs.writeFileSync(path.join(a, 'training-log.txt'), 'x'.repeat(5000)); // not part of the model's size
    const b = model('experiments/run1/checkpoint-500');
    model('node_modules/pkg/model');
    model('.git/lfs/model');
    model('a/b/c/d/e/too-deep');
    model('configs-only', { 'config.json': vit('config.json') });
    fs.symlinkSync(a, path.join(root, 'linked-model'));
    fs.symlinkSync(root, path.join(root, 'models', 'loop')); // a cycle must not trap the search
    const found = await findWorkspaceModels(root);
    assert.deepEqual(found.map((m) => path.relative(root, m.folder)).sort(), ['experiments/run1/checkpoint-500', 'linked-model', 'models/vit']);
    assert.ok(found.every((m) => m.modelType === 'vit' && isLoadable(m.files)));
    assert.ok(found.some((m) => m.folder === b));
    assert.equal(found.find((m) => m.folder === a)!.sizeBytes, Object.values(VIT_MODEL).reduce((n, f) => n + size(f), 0));
    assert.deepEqual((await findWorkspaceModels(root, { maxDepth: 6 })).length, 4);
  });

  describe('resolveModelReference', () => {
    let cache: string;
    let cwd: string;
    const opts = (extra: ResolveOptions = {}): ResolveOptions => ({
      env: { HF_HUB_CACHE: cache, HF_HOME: cwd, HF_ENDPOINT: 'http://127.0.0.1:1' }, retries: 0, cwd, ...extra,
    });
    before(() => {
      cache = makeTempDir();
      cwd = makeTempDir();
      addSnapshot(cache, 'models--google--vit-tiny', C_MAIN, VIT_MODEL, { refs: ['main'] });
      addSnapshot(cache, 'models--google--vit-tiny', C_PR, VIT_MODEL, { refs: ['refs/pr/1'] });
      addSnapshot(cache, 'models--partial--vit', C_MAIN, { 'config.json': vit('config.json') }, { refs: ['main'] });
      addSnapshot(cache, 'models--old--pickled', C_MAIN, { 'config.json': vit('config.json'), 'pytorch_model.bin': Buffer.from([0x80, 0x02]) }, { refs: ['main'] });
      fs.cpSync(path.join(GOLDEN, 'vit-tiny'), path.join(cwd, 'my-model'), { recursive: true });
      fs.cpSync(path.join(GOLDEN, 'vit-tiny'), path.join(cwd, 'local', 'vit'), { recursive: true });
    });

    it('a folder is used as it is (relative to cwd); a folder shaped like an id wins over the Hub', async () => {
      assert.deepEqual(await resolveModelReference('my-model', opts()), { folder: path.join(cwd, 'my-model'), source: 'folder' });
      assert.deepEqual(await resolveModelReference('local/vit', opts()), { folder: path.join(cwd, 'local', 'vit'), source: 'folder' });
    });

    it('a cached id resolves through refs/<revision> with no network access', async () => {
      const main = await resolveModelReference('google/vit-tiny', opts());
      assert.deepEqual(main, { folder: path.join(cache, 'models--google--vit-tiny', 'snapshots', C_MAIN), source: 'cache', repoId: 'google/vit-tiny', commit: C_MAIN });
      assert.equal((await resolveModelReference('google/vit-tiny@refs/pr/1', opts())).commit, C_PR);
      assert.equal((await resolveModelReference(`google/vit-tiny@${C_PR}`, opts())).commit, C_PR);
      assert.equal((await resolveModelReference('google/vit-tiny', opts({ revision: 'refs/pr/1' }))).commit, C_PR);
    });

    it('offline, a model not in the cache is a clear error; other cached revisions are suggested', async () => {
      const offline = { HF_HUB_CACHE: cache, HF_HOME: cwd, HF_HUB_OFFLINE: '1', HF_ENDPOINT: 'http://127.0.0.1:1' };
      await expectUserError(() => resolveModelReference('google/vit-base', opts({ env: offline })), 'google/vit-base', 'not in the Hugging Face cache', cache, 'HF_HUB_OFFLINE');
      await expectUserError(() => resolveModelReference('google/vit-tiny@v2', opts({ env: offline })),
        'google/vit-tiny@v2', 'HF_HUB_OFFLINE', `google/vit-tiny@main`, 'google/vit-tiny@refs/pr/1');
      await expectUserError(() => resolveModelReference('partial/vit', opts({ offline: true })), 'only partly in the Hugging Face cache', 'HF_HUB_OFFLINE');
      await expectUserError(() => resolveModelReference('old/pickled', opts({ offline: true })), 'pytorch_model.bin', 'safetensors', 'old/pickled@refs/pr/');
    });

    it('online, a model not in the cache goes to the Hub (here unreachable: the error says so)', async () => {
      await expectUserError(() => resolveModelReference('google/vit-base', opts()), 'google/vit-base', 'cannot reach http://127.0.0.1:1', 'HF_HUB_OFFLINE=1');
    });

    it('hubOnly (a picked checkpoint): a folder of the same name is ignored and never mentioned', async () => {
      addSnapshot(cache, 'models--local--vit', C_MAIN, VIT_MODEL, { refs: ['main'] });
      assert.equal((await resolveModelReference('local/vit', opts({ hubOnly: true }))).source, 'cache'); // cwd/local/vit exists
      const offline = { HF_HUB_CACHE: cache, HF_HOME: cwd, HF_HUB_OFFLINE: '1', HF_ENDPOINT: 'http://127.0.0.1:1' };
      const err = await resolveModelReference('google/vit-base', opts({ env: offline, hubOnly: true })).then(() => undefined, (e: Error) => e);
      assert.ok(err instanceof Error && /not in the Hugging Face cache/.test(err.message), String(err));
      assert.doesNotMatch(err.message, /no folder/);
      await expectUserError(() => resolveModelReference('my-model', opts({ hubOnly: true })), 'my-model', 'not a Hugging Face model id');
    });

    it('what is neither a folder nor an id says both', async () => {
      await expectUserError(() => resolveModelReference('no-such-model', opts()), 'no-such-model', 'neither a model folder nor a Hugging Face model id', 'google/vit-base-patch16-224');
      fs.writeFileSync(path.join(cwd, 'file.txt'), 'x');
      await expectUserError(() => resolveModelReference('file.txt', opts()), path.join(cwd, 'file.txt'), 'is a file, not a model folder');
    });
  });
});
