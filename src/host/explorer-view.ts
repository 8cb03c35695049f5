/**
 * The Attention Explorer: a sidebar WebviewView that follows the active inspector and shows its
 * layer × head grid for the selected token. Choosing a tile there drives the inspector.
 */
import * as vscode from 'vscode';
import { parseExplorerToHost, type HostToExplorerMessage } from '../shared/protocol';
import type { InspectionService } from './inspection-service';
import type { InspectorManager, InspectorView } from './inspector';
import { webviewHtml, webviewOptions } from './webview-html';

export const EXPLORER_VIEW_ID = 'visionInspector.attentionExplorer';

export class AttentionExplorerProvider implements vscode.WebviewViewProvider, vscode.Disposable {
  private view: vscode.WebviewView | undefined;
  private readonly disposables: vscode.Disposable[] = [];
  private viewDisposables: vscode.Disposable[] = [];

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly inspectors: InspectorManager,
    private readonly service: InspectionService,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.disposables.push(inspectors.onDidChangeActive(() => this.refresh()));
  }

  resolveWebviewView(view: vscode.WebviewView): void {
    for (const d of this.viewDisposables) d.dispose();
    this.view = view;
    view.webview.options = webviewOptions(this.extensionUri);
    view.webview.html = webviewHtml(view.webview, this.extensionUri, 'explorer', 'Attention Explorer');
    this.viewDisposables = [
      view.webview.onDidReceiveMessage((raw: unknown) => {
        const message = parseExplorerToHost(raw);
        if (!message) {
          this.log.warn('attention explorer: ignored a malformed message from the webview');
          return;
        }
        if (message.type === 'ready') this.refresh();
        else if (this.inspectors.active?.result?.id === message.resultId) this.inspectors.active.applySelection(message.selection);
      }),
      view.onDidChangeVisibility(() => {
        if (view.visible) this.refresh();
      }),
      view.onDidDispose(() => {
        if (this.view === view) this.view = undefined;
        for (const d of this.viewDisposables) d.dispose();
        this.viewDisposables = [];
      }),
    ];
  }

  /** Sends the active inspector's grid for its selected token (rows are sliced on demand: ≤ 1 MB). */
  private refresh(): void {
    const view = this.view;
    if (!view?.visible) return;
    const message = this.stateOf(this.inspectors.active);
    void view.webview.postMessage(message).then(undefined, () => undefined);
  }

  private stateOf(inspector: InspectorView | undefined): HostToExplorerMessage {
    const result = inspector?.result;
    if (!inspector || !result) {
      return { type: 'empty', message: inspector ? 'Waiting for the inspection to finish…' : 'Inspect an image (right-click it in the Explorer → Vision Inspector: Inspect Image) to see its attention here.' };
    }
    const selection = inspector.selection ?? { layer: result.model.layers - 1, head: 'mean', token: 0, mode: 'attention' };
    return {
      type: 'explorerState',
      resultId: result.id,
      modelKind: result.modelKind,
      imageName: result.imageName,
      modelName: result.model.name,
      grid: result.grid,
      layers: result.model.layers,
      heads: result.model.heads,
      selection,
      rows: this.service.tokenRows(result, selection.token).buffer as ArrayBuffer,
    };
  }

  dispose(): void {
    for (const d of [...this.disposables, ...this.viewDisposables]) d.dispose();
  }
}
