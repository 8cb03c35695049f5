/**
 * On-disk cache of converted graphs. A graph file holds no weights (they stay in the
 * checkpoint as external data), so entries are small; the key must change whenever the
 * checkpoint, the requested variant or this converter changes.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { writeWholeFile } from '../io/safetensors.js';
import type { InferenceEngine } from '../engine/client.js';
import type { BuiltGraph } from './graph.js';

/** Bump when graph construction changes, so stale cached graphs are never reused. */
export const CONVERTER_VERSION = 1;

export interface CachedGraph {
  bytes: Uint8Array;
  externalDataDir?: string;
  /** Where the graph came from: built now, or read from the cache folder. */
  source: 'built' | 'disk';
}

export function graphKey(parts: Record<string, unknown>): string {
  return createHash('sha256')
    .update(JSON.stringify({ converter: CONVERTER_VERSION, ...parts }))
    .digest('hex')
    .slice(0, 32);
}

export class GraphCache {
  /** `dir` undefined: build every time (tests, or when no writable storage exists). */
  constructor(readonly dir: string | undefined) {}

  async get(key: string, build: () => Promise<BuiltGraph>): Promise<CachedGraph> {
    if (this.dir) {
      const hit = await this.read(key);
      if (hit) return hit;
    }
    const built = await build();
    if (this.dir) await this.write(key, built);
    return { bytes: built.bytes, externalDataDir: built.externalDataDir, source: 'built' };
  }

  /** Loads the session `key` into `engine` unless it has it: the graph from this cache, built on a miss. Returns `key`. */
  async loadSession(engine: InferenceEngine, key: string, build: () => Promise<BuiltGraph>, signal?: AbortSignal): Promise<string> {
    if (!engine.hasSession(key)) {
      const graph = await this.get(key, build);
      await engine.loadSession(key, { modelBytes: graph.bytes, externalDataDir: graph.externalDataDir }, { signal });
    }
    return key;
  }

  private async read(key: string): Promise<CachedGraph | undefined> {
    const base = path.join(this.dir!, key);
    try {
      const meta = JSON.parse(await fs.readFile(`${base}.json`, 'utf8')) as { externalDataDir?: string; bytes: number };
      const bytes = await fs.readFile(`${base}.onnx`);
      if (bytes.length !== meta.bytes) return undefined; // torn entry from an older crash: rebuild
      if (meta.externalDataDir) await fs.access(meta.externalDataDir); // the checkpoint moved: rebuild
      return { bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), externalDataDir: meta.externalDataDir, source: 'disk' };
    } catch {
      return undefined;
    }
  }

  /** Writes the graph, then its metadata, each through a temporary file renamed into place. */
  private async write(key: string, graph: BuiltGraph): Promise<void> {
    const base = path.join(this.dir!, key);
    try {
      await fs.mkdir(this.dir!, { recursive: true });
      await writeWholeFile(`${base}.onnx`, graph.bytes, 'write the graph cache');
      await writeWholeFile(`${base}.json`, JSON.stringify({ externalDataDir: graph.externalDataDir, bytes: graph.bytes.length }), 'write the graph cache');
    } catch {
      // A cache that cannot be written (read-only or full disk) only costs a rebuild next time.
    }
  }
}
