import * as assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import sharp from 'sharp';
import { UserError } from '../../../src/core/errors.js';
import { DEFAULT_MAX_PIXELS, decodeImage, decodeImageBuffer } from '../../../src/core/image/decode.js';
import { PHOTOS } from './golden.js';

/** Asserts a UserError whose message names `file` and matches `pattern`. */
async function rejectsUserError(promise: Promise<unknown>, file: string, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof UserError, `not a UserError: ${String(e)}`);
    assert.ok(e.message.includes(file), `message does not name ${file}: ${e.message}`);
    assert.match(e.message, pattern);
    return true;
  });
}

/** PNG's CRC-32 (zlib.crc32 only exists from Node 20.15). */
function crc32(bytes: Uint8Array): number {
  let crc = ~0;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  return ~crc >>> 0;
}

/** A minimal PNG whose header claims width × height (the pixel data is a stub). */
function pngHeaderOnly(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer): Buffer => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(Buffer.alloc(16))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

describe('image/decode', () => {
  let tmp: string;
  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'vi-decode-'));
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('RGBA PNG (logo.png): 3 channels, colour channels as stored', async () => {
    const file = path.join(PHOTOS, 'logo.png');
    const img = await decodeImage(file);
    assert.equal(img.channels, 3);
    assert.equal(img.hadAlpha, true);
    assert.equal(img.sourceChannels, 4);
    assert.equal(img.data.length, 500 * 500 * 3);
    const rgba = await sharp(file).raw().toBuffer();
    for (let i = 0; i < 500 * 500; i++) {
      for (let c = 0; c < 3; c++) assert.equal(img.data[i * 3 + c], rgba[i * 4 + c], `pixel ${i} channel ${c}`);
    }
  });

  it('transparent pixels keep their colour: alpha is dropped, not composited on white', async () => {
    // logo.png is fully opaque, so make pixels with alpha 0 and 128.
    const rgba = Buffer.from([10, 20, 30, 0, 200, 100, 50, 128, 1, 2, 3, 255]);
    const png = await sharp(rgba, { raw: { width: 3, height: 1, channels: 4 } }).png().toBuffer();
    const img = await decodeImageBuffer(png, 'alpha.png');
    assert.deepEqual([...img.data], [10, 20, 30, 200, 100, 50, 1, 2, 3]);
  });

  it('greyscale PNG: expanded to RGB with r = g = b', async () => {
    const file = path.join(PHOTOS, 'camera.png');
    const img = await decodeImage(file);
    assert.equal(img.sourceChannels, 1);
    const grey = await sharp(file).toColourspace('b-w').raw().toBuffer();
    assert.equal(grey.length, 512 * 512);
    for (let i = 0; i < 512 * 512; i++) {
      assert.ok(img.data[i * 3] === grey[i] && img.data[i * 3 + 1] === grey[i] && img.data[i * 3 + 2] === grey[i], `pixel ${i}`);
    }
  });

  it('JPEG', async () => {
    const img = await decodeImage(path.join(PHOTOS, 'coffee.jpg'));
    assert.equal(img.sourceFormat, 'jpeg');
    assert.deepEqual([img.width, img.height, img.channels], [600, 400, 3]);
    assert.equal(img.data.length, 600 * 400 * 3);
  });

  it('applies EXIF orientation (6 = rotate 90° clockwise), or not when asked', async () => {
    // Stored 40×20: left half red, right half blue. Shown upright it is 20×40, red on top.
    const raw = Buffer.alloc(40 * 20 * 3);
    for (let y = 0; y < 20; y++) {
      for (let x = 0; x < 40; x++) raw.set(x < 20 ? [230, 20, 20] : [20, 20, 230], (y * 40 + x) * 3);
    }
    const file = path.join(tmp, 'rotated.jpg');
    await writeFile(file, await sharp(raw, { raw: { width: 40, height: 20, channels: 3 } }).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer());

    const upright = await decodeImage(file);
    assert.deepEqual([upright.width, upright.height, upright.sourceWidth, upright.sourceHeight], [20, 40, 40, 20]);
    assert.equal(upright.orientation, 6);
    assert.equal(upright.orientationApplied, true);
    const at = (x: number, y: number) => [...upright.data.subarray((y * 20 + x) * 3, (y * 20 + x) * 3 + 3)];
    assert.ok(at(10, 5)[0]! > 180 && at(10, 5)[2]! < 80, `top is red: ${at(10, 5)}`);
    assert.ok(at(10, 35)[2]! > 180 && at(10, 35)[0]! < 80, `bottom is blue: ${at(10, 35)}`);

    const stored = await decodeImage(file, { autoOrient: false });
    assert.deepEqual([stored.width, stored.height], [40, 20]);
    assert.equal(stored.orientationApplied, false);
  });

  it('16-bit PNG: keeps the high byte (PIL\'s RGB;16B)', async () => {
    const values = Uint16Array.from([0, 255, 256, 257, 32895, 65535]);
    const rgb16 = await sharp(values, { raw: { width: 2, height: 1, channels: 3 } }).toColourspace('rgb16').png().toBuffer();
    const img = await decodeImageBuffer(rgb16, 'rgb16.png');
    assert.equal(img.sourceBitDepth, 16);
    assert.deepEqual([...img.data], [0, 0, 1, 1, 128, 255]);

    const grey16 = await sharp(Uint16Array.from([513, 40000]), { raw: { width: 2, height: 1, channels: 1 } }).toColourspace('grey16').png().toBuffer();
    const grey = await decodeImageBuffer(grey16, 'grey16.png');
    assert.deepEqual([...grey.data], [2, 2, 2, 156, 156, 156]);
  });

  it('palette PNG: expanded through the palette', async () => {
    const raw = Buffer.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255]);
    const png = await sharp(raw, { raw: { width: 4, height: 1, channels: 3 } }).png({ palette: true, colours: 4, dither: 0 }).toBuffer();
    const img = await decodeImageBuffer(png, 'palette.png');
    assert.equal(img.wasPalette, true);
    assert.deepEqual([...img.data], [...(await sharp(png).removeAlpha().raw().toBuffer())]);
    assert.equal(img.data.length, 12);
  });

  it('truncated file → UserError naming the file', async () => {
    const file = path.join(tmp, 'truncated.png');
    const full = await readFile(path.join(PHOTOS, 'camera.png'));
    await writeFile(file, full.subarray(0, Math.floor(full.length / 3)));
    await rejectsUserError(decodeImage(file), file, /truncated or corrupt/);

    const jpeg = path.join(tmp, 'truncated.jpg');
    await writeFile(jpeg, (await readFile(path.join(PHOTOS, 'coffee.jpg'))).subarray(0, 20000));
    await rejectsUserError(decodeImage(jpeg), jpeg, /truncated or corrupt/);
  });

  it('a text file named .png → UserError naming the file and the supported formats', async () => {
    const file = path.join(tmp, 'notes.png');
    await writeFile(file, 'just some text, not an image\n');
    await rejectsUserError(decodeImage(file), file, /not an image file.*Supported formats: JPEG, PNG/);
  });

  it('missing, empty and folder paths → UserErrors', async () => {
    await rejectsUserError(decodeImage(path.join(tmp, 'nope.png')), 'nope.png', /not found/);
    const empty = path.join(tmp, 'empty.jpg');
    await writeFile(empty, '');
    await rejectsUserError(decodeImage(empty), empty, /empty/);
    await rejectsUserError(decodeImage(tmp), tmp, /folder/);
    await rejectsUserError(decodeImageBuffer(new Uint8Array(0), 'clipboard image'), 'clipboard image', /empty/);
  });

  it('refuses images over the pixel limit before decoding them', async () => {
    await rejectsUserError(decodeImageBuffer(pngHeaderOnly(30000, 30000), 'huge.png'), 'huge.png', /30000 × 30000 = 900,000,000 pixels, more than the limit of 178,956,970/);
    assert.equal(DEFAULT_MAX_PIXELS, 178_956_970);
    await rejectsUserError(decodeImage(path.join(PHOTOS, 'camera.png'), { maxPixels: 100_000 }), 'camera.png', /262,144 pixels/);
  });

  it('SVG is refused (PIL cannot read it either)', async () => {
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4"/></svg>');
    await rejectsUserError(decodeImageBuffer(svg, 'icon.svg'), 'icon.svg', /SVG images are not supported/);
  });
});
