/** Shared helpers for the io tests: temp folders, hand-made safetensors bytes, error assertions. */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UserError } from '../../../src/core/errors.js';

import { GOLDEN } from '../parity.js';

export { GOLDEN };

/** A fresh folder under os.tmpdir(); remove it with removeTempDirs() in an after() hook. */
const created: string[] = [];
export function makeTempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vi-io-test-'));
  created.push(dir);
  return dir;
}
export function removeTempDirs(): void {
  for (const dir of created.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}

/**
 * The bytes of a safetensors file with a header we control completely (no validation), to build
 * the broken files a loader must refuse. `header` is JSON text or a value to stringify.
 */
export function rawSafetensors(
  header: string | object,
  data: Uint8Array | number,
  options: { headerLength?: bigint; padTo8?: boolean } = {},
): Buffer {
  let json = typeof header === 'string' ? header : JSON.stringify(header);
  if (options.padTo8 ?? true) json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(options.headerLength ?? BigInt(headerBytes.length));
  const body = typeof data === 'number' ? Buffer.alloc(data) : Buffer.from(data);
  return Buffer.concat([prefix, headerBytes, body]);
}

/** Writes `bytes` to `dir/name` and returns the path. */
export function writeFile(dir: string, name: string, bytes: string | Uint8Array): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, bytes);
  return file;
}

/** Awaits `action`, requires a UserError whose message contains every fragment, and returns it. */
export async function expectUserError(action: () => Promise<unknown>, ...fragments: string[]): Promise<UserError> {
  let caught: unknown;
  try {
    await action();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught !== undefined, 'expected a UserError, but nothing was thrown');
  assert.ok(caught instanceof UserError, `expected a UserError, got ${String(caught)}`);
  for (const fragment of fragments) {
    assert.ok(caught.message.includes(fragment), `message should mention ${JSON.stringify(fragment)}: ${caught.message}`);
  }
  return caught;
}

/** Copies a fixture folder (files only) into a new temp folder. */
export function copyFixture(name: string): string {
  const dir = makeTempDir();
  for (const entry of fs.readdirSync(path.join(GOLDEN, name), { withFileTypes: true })) {
    if (entry.isFile()) fs.copyFileSync(path.join(GOLDEN, name, entry.name), path.join(dir, entry.name));
  }
  return dir;
}

/** The float32 nearest to `x` in bfloat16, rounding to nearest-even as torch's `.to(torch.bfloat16)` does. */
export function roundToBf16(x: number): number {
  const f = new Float32Array([x]);
  const bits = new Uint32Array(f.buffer);
  const b = bits[0]!;
  const rounded = (b + 0x7fff + ((b >>> 16) & 1)) >>> 0;
  bits[0] = rounded & 0xffff0000;
  return f[0]!;
}
