/** Which image a command acts on: its argument, else the active tab's image, else one the user picks. */
import * as path from 'node:path';
import * as vscode from 'vscode';

export const IMAGE_EXTENSIONS = ['png', 'jpg', 'jpeg', 'gif', 'webp', 'bmp', 'tif', 'tiff'];

export function isImageUri(uri: vscode.Uri): boolean {
  return IMAGE_EXTENSIONS.includes(path.extname(uri.path).slice(1).toLowerCase());
}

/**
 * The image shown in the active tab: the built-in image preview and custom editors (ours too)
 * are TabInputCustom; an image opened as text is TabInputText.
 */
export function activeTabImage(): vscode.Uri | undefined {
  const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  const uri = input instanceof vscode.TabInputCustom || input instanceof vscode.TabInputText ? input.uri : undefined;
  return uri && isImageUri(uri) ? uri : undefined;
}

export async function resolveImage(arg: unknown): Promise<vscode.Uri | undefined> {
  if (arg instanceof vscode.Uri) return arg;
  const fromTab = activeTabImage();
  if (fromTab) return fromTab;
  const picked = await vscode.window.showOpenDialog({
    canSelectMany: false,
    openLabel: 'Inspect',
    title: 'Vision Inspector: choose an image',
    filters: { Images: IMAGE_EXTENSIONS },
  });
  return picked?.[0];
}
