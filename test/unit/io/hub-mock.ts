/**
 * A local stand-in for the Hugging Face Hub, on 127.0.0.1, speaking the parts of its protocol
 * the downloader uses, as huggingface.co does:
 * - `GET /api/models/{org}/{name}/revision/{rev}` → `{ id, sha, siblings: [{ rfilename }] }`;
 * - `HEAD|GET /{org}/{name}/resolve/{rev}/{file}`: small files answered directly with
 *   `ETag: "<git blob sha1>"`; LFS files (*.safetensors, *.bin, *.h5) with a 302 to a second
 *   server (the "CDN", another origin) carrying `X-Linked-Etag: "<sha256>"` and `X-Linked-Size`;
 *   every answer carries `X-Repo-Commit`;
 * - errors with the Hub's `X-Error-Code` (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo).
 * The CDN honours Range, and `cdnBehaviour` makes it misbehave the ways networks do.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { GOLDEN } from './helpers.js';

export interface MockRepo {
  files: Record<string, Buffer>;
  /** Revision name → commit; default `{ main: commitOf(id, 'main') }`. */
  refs?: Record<string, string>;
  /** When set, resolve requests need `Authorization: Bearer <gatedToken>`. */
  gatedToken?: string;
}

export interface RequestRecord {
  server: 'hub' | 'cdn';
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
}

/** How the CDN misbehaves for one blob (by sha256); each counter is used up request by request. */
export interface CdnBehaviour {
  /** Send only this many bytes, then cut the connection; for the next `times` requests (default 1). */
  dropAfter?: { bytes: number; times?: number };
  /** Send this many bytes, then keep the connection open without sending anything more (next request only). */
  stallAfter?: number;
  /** Answer Range requests with the whole file (200), as some proxies do. */
  ignoreRange?: boolean;
  /** Trickle: `bytes` every `intervalMs`. */
  slow?: { bytes: number; intervalMs: number };
  /** Flip a byte of what is sent (next `times` requests). */
  corrupt?: { times: number };
}

export const LFS = (name: string): boolean => /\.(safetensors|bin|h5|pt)$/.test(name);

export function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** git's object id of a blob: what the Hub sends as the ETag of a file stored in git (not LFS). */
export function gitBlobSha1(bytes: Buffer): string {
  return createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
}

export function commitOf(repoId: string, revision: string): string {
  return createHash('sha1').update(`${repoId}@${revision}`).digest('hex');
}

/** The etag huggingface_hub names a file's blob by. */
export function etagOf(name: string, bytes: Buffer): string {
  return LFS(name) ? sha256(bytes) : gitBlobSha1(bytes);
}

/** A repo with the given files of a golden fixture folder, plus `extra` files (e.g. a README, pickles). */
export function fixtureRepo(fixture: string, names: readonly string[], extra: Record<string, Buffer> = {}): MockRepo {
  const files: Record<string, Buffer> = {};
  for (const name of names) files[name] = fs.readFileSync(path.join(GOLDEN, fixture, name));
  return { files: { ...files, ...extra } };
}

export class MockHub {
  readonly requests: RequestRecord[] = [];
  /** sha256 → behaviour; tests set it and reset() clears it. */
  readonly cdnBehaviour = new Map<string, CdnBehaviour>();
  private readonly blobs = new Map<string, Buffer>();

  private constructor(
    private readonly repos: Map<string, MockRepo>,
    private readonly hub: http.Server,
    private readonly cdn: http.Server,
  ) {
    for (const repo of repos.values()) {
      for (const bytes of Object.values(repo.files)) this.blobs.set(sha256(bytes), bytes);
    }
  }

  static async start(repos: Record<string, MockRepo>): Promise<MockHub> {
    const hubServer = http.createServer();
    const cdnServer = http.createServer();
    const mock = new MockHub(new Map(Object.entries(repos)), hubServer, cdnServer);
    hubServer.on('request', (req, res) => mock.onHub(req, res));
    cdnServer.on('request', (req, res) => mock.onCdn(req, res));
    await Promise.all([hubServer, cdnServer].map((s) => new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))));
    return mock;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${(this.hub.address() as AddressInfo).port}`;
  }

  get cdnOrigin(): string {
    return `http://127.0.0.1:${(this.cdn.address() as AddressInfo).port}`;
  }

  commit(repoId: string, revision = 'main'): string {
    const repo = this.repos.get(repoId)!;
    return (repo.refs ?? { main: commitOf(repoId, 'main') })[revision]!;
  }

  /** Requests that transferred file content (GETs answered with bytes, on either server). */
  contentRequests(): RequestRecord[] {
    return this.requests.filter((r) => r.method === 'GET' && (r.server === 'cdn' || r.path.includes('/resolve/')));
  }

  reset(): void {
    this.requests.length = 0;
    this.cdnBehaviour.clear();
  }

  async close(): Promise<void> {
    for (const server of [this.hub, this.cdn]) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  private record(server: 'hub' | 'cdn', req: http.IncomingMessage): void {
    this.requests.push({ server, method: req.method ?? '', path: req.url ?? '', headers: req.headers });
  }

  private onHub(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.record('hub', req);
    const url = new URL(req.url ?? '/', this.endpoint);
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(url.pathname);
    if (api) return this.onApi(decodeURIComponent(api[1]!), decodeURIComponent(api[2]!), res);
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (resolve) return this.onResolve(req, res, decodeURIComponent(resolve[1]!), decodeURIComponent(resolve[2]!), decodeURIComponent(resolve[3]!));
    fail(res, 404, 'EntryNotFound');
  }

  private commitFor(repoId: string, revision: string): string | undefined {
    const refs = this.repos.get(repoId)!.refs ?? { main: commitOf(repoId, 'main') };
    if (refs[revision]) return refs[revision];
    return Object.values(refs).includes(revision) ? revision : undefined;
  }

  private onApi(repoId: string, revision: string, res: http.ServerResponse): void {
    const repo = this.repos.get(repoId);
    if (!repo) return fail(res, 401, 'RepoNotFound'); // the Hub answers 401 to anonymous requests for unknown (or private) repos
    const commit = this.commitFor(repoId, revision);
    if (!commit) return fail(res, 404, 'RevisionNotFound');
    const body = JSON.stringify({
      _id: commit.slice(0, 24), id: repoId, sha: commit, private: false, gated: repo.gatedToken ? 'manual' : false,
      siblings: Object.keys(repo.files).map((rfilename) => ({ rfilename })),
    });
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  }

  private onResolve(req: http.IncomingMessage, res: http.ServerResponse, repoId: string, revision: string, file: string): void {
    const repo = this.repos.get(repoId);
    if (!repo) return fail(res, 401, 'RepoNotFound');
    const commit = this.commitFor(repoId, revision);
    if (!commit) return fail(res, 404, 'RevisionNotFound');
    if (repo.gatedToken) {
      const auth = req.headers.authorization;
      if (!auth) return fail(res, 401, 'GatedRepo', `Access to model ${repoId} is restricted. You must have access to it and be authenticated to access it. Please log in.`);
      if (auth !== `Bearer ${repo.gatedToken}`) return fail(res, 403, 'GatedRepo', `Access to model ${repoId} is restricted and you are not in the authorized list.`);
    }
    const bytes = repo.files[file];
    if (!bytes) return fail(res, 404, 'EntryNotFound');
    const common = { 'X-Repo-Commit': commit, 'Accept-Ranges': 'bytes' };
    if (LFS(file)) {
      const sha = sha256(bytes);
      const pointer = Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha}\nsize ${bytes.length}\n`);
      res.writeHead(302, {
        ...common,
        Location: `${this.cdnOrigin}/repos/${sha.slice(0, 2)}/${sha}?X-Amz-Signature=test`,
        ETag: `"${gitBlobSha1(pointer)}"`, // the pointer's: the downloader must prefer X-Linked-Etag
        'X-Linked-Etag': `"${sha}"`,
        'X-Linked-Size': String(bytes.length),
        'Content-Length': 0,
      });
      res.end();
      return;
    }
    sendBytes(req, res, bytes, { ...common, ETag: `"${gitBlobSha1(bytes)}"`, 'Content-Type': 'application/octet-stream' }, {});
  }

  private onCdn(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.record('cdn', req);
    const sha = /\/([0-9a-f]{64})$/.exec(new URL(req.url ?? '/', this.cdnOrigin).pathname)?.[1];
    const bytes = sha ? this.blobs.get(sha) : undefined;
    if (!sha || !bytes) return fail(res, 404, 'EntryNotFound');
    const behaviour = this.cdnBehaviour.get(sha) ?? {};
    const once: CdnBehaviour = { ignoreRange: behaviour.ignoreRange, slow: behaviour.slow };
    if (behaviour.dropAfter && (behaviour.dropAfter.times ?? 1) > 0) {
      once.dropAfter = behaviour.dropAfter;
      behaviour.dropAfter = { ...behaviour.dropAfter, times: (behaviour.dropAfter.times ?? 1) - 1 };
    }
    if (behaviour.stallAfter !== undefined) {
      once.stallAfter = behaviour.stallAfter;
      delete behaviour.stallAfter;
    }
    if (behaviour.corrupt && behaviour.corrupt.times > 0) {
      once.corrupt = behaviour.corrupt;
      behaviour.corrupt = { times: behaviour.corrupt.times - 1 };
    }
    sendBytes(req, res, bytes, { ETag: `"${sha}"`, 'Content-Type': 'application/octet-stream' }, once);
  }
}

function fail(res: http.ServerResponse, status: number, code: string, message = code): void {
  const body = JSON.stringify({ error: message });
  res.writeHead(status, { 'X-Error-Code': code, 'X-Error-Message': message, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

/** Serves `bytes` (or the requested range) the way `behaviour` says. */
function sendBytes(
  req: http.IncomingMessage, res: http.ServerResponse, bytes: Buffer, headers: http.OutgoingHttpHeaders, behaviour: CdnBehaviour,
): void {
  let start = 0;
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  if (range && !behaviour.ignoreRange) {
    start = Number(range[1]);
    if (start >= bytes.length) {
      res.writeHead(416, { 'Content-Range': `bytes */${bytes.length}` });
      res.end();
      return;
    }
    res.writeHead(206, { ...headers, 'Content-Length': bytes.length - start, 'Content-Range': `bytes ${start}-${bytes.length - 1}/${bytes.length}` });
  } else {
    res.writeHead(200, { ...headers, 'Content-Length': bytes.length });
  }
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  let body = bytes.subarray(start);
  if (behaviour.corrupt) {
    body = Buffer.from(body);
    body[body.length >> 1] ^= 0xff;
  }
  if (behaviour.dropAfter) {
    res.write(body.subarray(0, behaviour.dropAfter.bytes), () => setTimeout(() => res.socket?.destroy(), 20));
    return;
  }
  if (behaviour.stallAfter !== undefined) {
    res.write(body.subarray(0, behaviour.stallAfter)); // then nothing: the client's idle timeout must notice
    return;
  }
  if (behaviour.slow) {
    const { bytes: step, intervalMs } = behaviour.slow;
    let pos = 0;
    const timer = setInterval(() => {
      if (res.destroyed) return clearInterval(timer);
      res.write(body.subarray(pos, pos + step));
      pos += step;
      if (pos >= body.length) {
        clearInterval(timer);
        res.end();
      }
    }, intervalMs);
    res.on('close', () => clearInterval(timer));
    return;
  }
  res.end(body);
}
