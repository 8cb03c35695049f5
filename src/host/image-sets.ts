/**
 * Sets of images beside the inspected one (the CLIP matrix's rows, the images mean attention
 * distance averages over): chosen in VS Code's file picker, or passed to the
 * visionInspector.chooseImages command (which skips the picker: scripted use and the e2e test).
 * Folders stand for the image files directly inside them. The paths stay on the host; the
 * webview gets names and thumbnails and names the set by its id.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import * as vscode from 'vscode';
import { MAX_IMAGE_SET, THUMBNAIL_SIDE, type ImageSetInfo, type ImageSetPurpose, type RgbFigure } from '../shared/protocol';
import { IMAGE_EXTENSIONS, isImageUri } from './image-target';

export interface ImageSet {
  info: ImageSetInfo;
  paths: string[];
}

/** The argument of visionInspector.chooseImages: a purpose and the files or folders (paths or URIs) to use. */
export interface ChooseImagesArgs {
  purpose: ImageSetPurpose;
  paths?: (string | vscode.Uri)[];
}

const PICKER: Record<ImageSetPurpose, vscode.OpenDialogOptions> = {
  clipMatrix: { canSelectMany: true, canSelectFiles: true, canSelectFolders: false, openLabel: 'Compare', title: 'Vision Inspector: images to compare with', filters: { Images: IMAGE_EXTENSIONS } },
  attentionDistance: { canSelectMany: true, canSelectFiles: true, canSelectFolders: true, openLabel: 'Average Over These', title: 'Vision Inspector: images (or folders of images) to average mean attention distance over', filters: { Images: IMAGE_EXTENSIONS } },
};

/** The files or folders for a set: the given ones, else the picker's (undefined if cancelled). */
export async function pickImageUris(purpose: ImageSetPurpose, given: ChooseImagesArgs['paths'], near: vscode.Uri): Promise<vscode.Uri[] | undefined> {
  if (given && given.length > 0) return given.map((p) => (typeof p === 'string' ? (/^[a-z][\w+.-]+:\/\//i.test(p) ? vscode.Uri.parse(p) : vscode.Uri.file(p)) : p));
  return vscode.window.showOpenDialog({ ...PICKER[purpose], defaultUri: vscode.Uri.joinPath(near, '..') });
}

/**
 * The image files of `uris` in order (a folder's images sorted by name, not recursing), at most
 * `max`, each with a thumbnail; files that are not decodable images are skipped and counted.
 */
export async function buildImageSet(setId: number, purpose: ImageSetPurpose, uris: readonly vscode.Uri[], max = MAX_IMAGE_SET): Promise<ImageSet> {
  const files: string[] = [];
  let skipped = 0;
  for (const uri of uris) {
    const stat = await fsp.stat(uri.fsPath).catch(() => undefined);
    if (stat?.isDirectory()) {
      const names = (await fsp.readdir(uri.fsPath)).filter((n) => isImageUri(vscode.Uri.file(n))).sort();
      files.push(...names.map((n) => path.join(uri.fsPath, n)));
    } else if (stat?.isFile()) {
      files.push(uri.fsPath);
    } else {
      skipped++;
    }
  }
  const unique = [...new Set(files)];
  const images: ImageSetInfo['images'] = [];
  const paths: string[] = [];
  for (const file of unique) {
    if (images.length >= max) {
      skipped++;
      continue;
    }
    const thumbnail = await thumbnailOf(file).catch(() => undefined);
    if (!thumbnail) {
      skipped++;
      continue;
    }
    images.push({ name: path.basename(file), path: file, thumbnail });
    paths.push(file);
  }
  return { info: { setId, purpose, images, skipped }, paths };
}

/** A small RGB picture of an image file (EXIF orientation applied), at most THUMBNAIL_SIDE a side. */
async function thumbnailOf(file: string): Promise<RgbFigure> {
  const { data, info } = await sharp(file).rotate().resize(THUMBNAIL_SIDE, THUMBNAIL_SIDE, { fit: 'inside' }).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer };
}
