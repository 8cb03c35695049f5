/**
 * Extension entry point. Inference runs in the engine's worker thread, so the extension host
 * stays responsive; this file only wires commands, progress and the log.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { CancelledError, UserError } from '../core/errors';
import { InferenceEngine } from '../core/engine/client';
import { decodeImage } from '../core/image/decode';
import { preprocess } from '../core/image/preprocess';
import { GraphCache } from '../core/onnx/cache';
import { ModelRunner, openModel, topK } from '../core/models/runner';

const IMAGE_EXTENSIONS = ['png', 'jpg', 'jpeg', 'gif', 'webp', 'bmp', 'tif', 'tiff'];

export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel('Vision Inspector', { log: true });
  context.subscriptions.push(log);

  let runner: ModelRunner | undefined;
  const getRunner = (): ModelRunner => {
    if (!runner) {
      const threads = vscode.workspace.getConfiguration('visionInspector').get<number>('threads') || undefined;
      const engine = InferenceEngine.create({ workerPath: path.join(context.extensionPath, 'out', 'worker.js'), threads });
      context.subscriptions.push({ dispose: () => void engine.dispose() });
      runner = new ModelRunner(engine, new GraphCache(path.join(context.globalStorageUri.fsPath, 'graphs')));
    }
    return runner;
  };

  context.subscriptions.push(
    vscode.commands.registerCommand('visionInspector.showLog', () => log.show()),
    vscode.commands.registerCommand('visionInspector.inspectImage', async (uri?: vscode.Uri) => {
      const image = uri ?? (await pickImage());
      if (!image) return;
      const modelDir = vscode.workspace.getConfiguration('visionInspector').get<string>('model');
      if (!modelDir) {
        void vscode.window.showErrorMessage('Vision Inspector: set "visionInspector.model" to a Hugging Face model folder (config.json + *.safetensors).');
        return;
      }
      if (!vscode.workspace.isTrusted) {
        void vscode.window.showWarningMessage('Vision Inspector does not load models in Restricted Mode: trust this workspace to inspect images.');
        return;
      }
      try {
        await vscode.window.withProgress(
          { location: vscode.ProgressLocation.Notification, title: 'Vision Inspector', cancellable: true },
          async (progress, token) => {
            const controller = new AbortController();
            token.onCancellationRequested(() => controller.abort());
            progress.report({ message: 'loading model…' });
            const loaded = await openModel(modelDir);
            const processed = preprocess(await decodeImage(image.fsPath), loaded.checkpoint.preprocessorConfig ?? {}, { kind: loaded.kind });
            progress.report({ message: 'running…' });
            const run = await getRunner().runViT(loaded, { type: 'float32', dims: processed.shape, data: processed.pixelValues }, { fetches: ['logits'], signal: controller.signal });
            const logits = run.tensors.logits;
            if (!logits) throw new UserError('the model has no classification head.', loaded.checkpoint.dir);
            const top = topK(logits.data as Float32Array, loaded.model.labels, 5);
            log.info(`${image.fsPath}: ${top.map((t) => `${t.label} ${(t.probability * 100).toFixed(1)}%`).join(', ')}`);
            void vscode.window.showInformationMessage(`${path.basename(image.fsPath)}: ${top[0]!.label} (${(top[0]!.probability * 100).toFixed(1)} %)`);
          },
        );
      } catch (err) {
        if (err instanceof CancelledError) return;
        log.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
        void vscode.window.showErrorMessage(`Vision Inspector: ${err instanceof Error ? err.message : String(err)}`);
      }
    }),
  );
}

async function pickImage(): Promise<vscode.Uri | undefined> {
  const picked = await vscode.window.showOpenDialog({ canSelectMany: false, filters: { Images: IMAGE_EXTENSIONS } });
  return picked?.[0];
}

export function deactivate(): void {}
