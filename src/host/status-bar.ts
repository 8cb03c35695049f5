/** The status-bar item naming the active model; clicking it opens the model picker. */
import * as vscode from 'vscode';
import { modelDisplayName } from '../core/io/hub-layout';
import type { ModelSelection } from './model-selection';

export class ModelStatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('visionInspector.model', vscode.StatusBarAlignment.Right, 100);
  private readonly subscription: vscode.Disposable;

  constructor(private readonly models: ModelSelection) {
    this.item.name = 'Vision Inspector Model';
    this.item.command = 'visionInspector.selectModel';
    this.subscription = models.onDidChange(() => this.update());
    this.update();
    this.item.show();
  }

  update(): void {
    const active = this.models.peekInspectorModel();
    this.item.text = `$(eye) ${active ? modelDisplayName(active.path) : 'No model'}`;
    this.item.tooltip = active
      ? `Vision Inspector model (${active.source === 'picked' ? 'selected' : 'from settings'}): ${active.path}\nClick to choose another.`
      : 'Vision Inspector: no model selected. Click to choose one.';
  }

  dispose(): void {
    this.subscription.dispose();
    this.item.dispose();
  }
}
