/**
 * The HTML shell of every webview: a strict CSP (scripts only with this page's nonce, no eval,
 * no inline styles except lit's adopted stylesheets, images only from blob: URLs the page makes
 * itself), resources only from the extension's webview bundle folder.
 */
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';

export type WebviewEntry = 'inspector' | 'explorer';

/** The only folders a webview may load from: our bundles (with the codicon font) and icons. */
export function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewOptions {
  return {
    enableScripts: true,
    localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'out', 'webview'), vscode.Uri.joinPath(extensionUri, 'media')],
  };
}

export function webviewHtml(webview: vscode.Webview, extensionUri: vscode.Uri, entry: WebviewEntry, title: string): string {
  const nonce = randomBytes(18).toString('base64');
  const asset = (...parts: string[]): string => webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'out', 'webview', ...parts)).toString();
  const csp = [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    // lit and vscode-elements use constructable stylesheets; codicons needs its stylesheet and font.
    `style-src ${webview.cspSource} 'nonce-${nonce}'`,
    `font-src ${webview.cspSource}`,
    // The image arrives as bytes and is shown through a blob: URL, so exports can read the canvas.
    'img-src blob: data:',
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" nonce="${nonce}" href="${asset('codicons', 'codicon.css')}" id="vscode-codicon-stylesheet">
<link rel="stylesheet" nonce="${nonce}" href="${asset('webview.css')}">
<title>${escapeHtml(title)}</title>
</head>
<body>
<vi-${entry}></vi-${entry}>
<script type="module" nonce="${nonce}" src="${asset(`${entry}.js`)}"></script>
</body>
</html>`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
