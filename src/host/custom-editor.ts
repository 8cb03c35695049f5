/**
 * "Open With… → Vision Inspector" for image files: a read-only custom editor whose webview is an
 * inspector. Registered with priority "option", so the built-in image preview stays the default.
 */
import * as vscode from 'vscode';
import type { InspectorManager } from './inspector';

export class InspectorEditorProvider implements vscode.CustomReadonlyEditorProvider {
  constructor(private readonly inspectors: InspectorManager) {}

  openCustomDocument(uri: vscode.Uri): vscode.CustomDocument {
    // Nothing to load up front: the inspector reads the file when it runs.
    return { uri, dispose: () => undefined };
  }

  async resolveCustomEditor(document: vscode.CustomDocument, panel: vscode.WebviewPanel): Promise<void> {
    const view = this.inspectors.adopt(panel, document.uri, 'editor');
    await view.run();
  }
}
