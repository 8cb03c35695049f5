/**
 * Extension entry point: wires commands, the inspector panels and custom editor, the Attention
 * Explorer view, the model picker, the status bar and the log. Inference runs in the engine's
 * worker thread (see inspection-service.ts), so the extension host stays responsive.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { AttentionExplorerProvider, EXPLORER_VIEW_ID } from './explorer-view';
import { InspectorEditorProvider } from './custom-editor';
import { resolveImage } from './image-target';
import { InspectionService } from './inspection-service';
import { CUSTOM_EDITOR_VIEW_TYPE, INSPECTOR_VIEW_TYPE, InspectorManager, type InspectorPanelState } from './inspector';
import { ModelSelection } from './model-selection';
import type { ChooseImagesArgs } from './image-sets';
import { IMAGE_SET_PURPOSES, isImageSetPurpose } from '../shared/protocol';
import { affectsEngine } from './settings';
import { ModelStatusBar } from './status-bar';

export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel('Vision Inspector', { log: true });
  const service = new InspectionService(
    path.join(context.extensionPath, 'out', 'worker.js'),
    path.join(context.globalStorageUri.fsPath, 'graphs'),
    log,
  );
  const models = new ModelSelection(context.workspaceState, log);
  const inspectors = new InspectorManager({ extensionUri: context.extensionUri, service, models, log });
  const explorer = new AttentionExplorerProvider(context.extensionUri, inspectors, service, log);
  context.subscriptions.push(log, service, models, inspectors, explorer, new ModelStatusBar(models));

  context.subscriptions.push(
    vscode.commands.registerCommand('visionInspector.inspectImage', async (arg?: unknown) => {
      const image = await resolveImage(arg);
      if (image) await inspectors.inspect(image);
    }),
    vscode.commands.registerCommand('visionInspector.selectModel', async () => {
      const picked = await models.pick('vit');
      if (picked) {
        log.info(`model for ${picked.kind}: ${picked.path}`);
        await inspectors.rerunAll();
      }
    }),
    vscode.commands.registerCommand('visionInspector.showLog', () => log.show()),
    // The inspector's "Compare with images…" and "Average over images…" buttons; with `paths` it skips the picker.
    vscode.commands.registerCommand('visionInspector.chooseImages', async (args?: ChooseImagesArgs) => {
      const purpose = args?.purpose;
      if (!isImageSetPurpose(purpose)) throw new Error(`visionInspector.chooseImages needs { purpose: ${IMAGE_SET_PURPOSES.join(' | ')}, paths? }`);
      const view = inspectors.active;
      if (!view) {
        void vscode.window.showWarningMessage('Vision Inspector: open an inspector first.');
        return;
      }
      await view.chooseImages(purpose, Array.isArray(args?.paths) ? args.paths : undefined);
    }),
    vscode.window.registerWebviewViewProvider(EXPLORER_VIEW_ID, explorer),
    vscode.window.registerCustomEditorProvider(CUSTOM_EDITOR_VIEW_TYPE, new InspectorEditorProvider(inspectors), {
      // Each editor is an independent inspector (they share only the result cache), so split views just work.
      supportsMultipleEditorsPerDocument: true,
    }),
    vscode.window.registerWebviewPanelSerializer(INSPECTOR_VIEW_TYPE, {
      async deserializeWebviewPanel(panel: vscode.WebviewPanel, state: unknown) {
        const imagePath = (state as InspectorPanelState | undefined)?.imagePath;
        if (typeof imagePath !== 'string') {
          panel.dispose();
          return;
        }
        await inspectors.adopt(panel, vscode.Uri.file(imagePath), 'panel').run();
      },
    }),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (affectsEngine(e)) {
        log.info('engine settings changed: the inference worker restarts on the next run');
        service.restartEngine();
      }
    }),
  );
  log.info(`Vision Inspector ${context.extension.packageJSON.version as string} activated (workspace ${vscode.workspace.isTrusted ? 'trusted' : 'in Restricted Mode'})`);
}

export function deactivate(): void {}
