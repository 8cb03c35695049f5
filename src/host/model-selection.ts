/**
 * Which model each view uses, and the "Select Model…" picker. A model the user picks is
 * remembered per model kind (in the workspace's state); without one, `visionInspector.model`
 * is used. Restricted Mode is applied by settings.ts.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { UserError } from '../core/errors';
import type { ModelKind } from '../shared/protocol';
import { describeModelFolder, discoverHubCacheModels, discoverWorkspaceModels, type DiscoveredModel } from './model-discovery';
import { askForHubModel, downloadHubModel } from './model-download';
import { configuredModelPaths, SECTION, type ConfiguredPath } from './settings';

export interface ActiveModel {
  path: string;
  /** Where the choice came from, for the status bar tooltip. */
  source: 'picked' | 'settings';
}

const STATE_KEY = (kind: ModelKind): string => `${SECTION}.pickedModel.${kind}`;
/** The last model picked of any kind: the inspector shows it with the views of its kind. */
const INSPECTOR_KEY = `${SECTION}.pickedModel.inspector`;

/** Thrown when no model is configured; the inspector offers "Select Model…" for it. */
export class NoModelError extends UserError {
  constructor(readonly blocked: readonly ConfiguredPath[]) {
    super(
      blocked.length > 0
        ? `This workspace sets ${blocked.map((b) => `"${b.key}"`).join(', ')} to ${blocked.map((b) => b.path).join(', ')}, but it is not trusted, so Vision Inspector does not load models it points to (Restricted Mode).`
        : 'No model selected.',
      undefined,
      blocked.length > 0
        ? 'Trust the workspace, or choose a model yourself with "Vision Inspector: Select Model…".'
        : 'Run "Vision Inspector: Select Model…", or set "visionInspector.model" to a Hugging Face model folder (config.json + *.safetensors).',
    );
  }
}

export class ModelSelection implements vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<ModelKind>();
  /** Fires with the kind whose model changed (picked, or the setting edited). */
  readonly onDidChange = this.changed.event;
  private readonly disposables: vscode.Disposable[] = [this.changed];

  constructor(
    private readonly state: vscode.Memento,
    private readonly log?: vscode.LogOutputChannel,
  ) {
    this.disposables.push(
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration(`${SECTION}.model`)) {
          // Editing the setting is a newer, explicit choice than an earlier pick.
          void this.state.update(STATE_KEY('vit'), undefined);
          void this.state.update(INSPECTOR_KEY, undefined);
          this.changed.fire('vit');
        }
      }),
      vscode.workspace.onDidGrantWorkspaceTrust(() => this.changed.fire('vit')),
    );
  }

  /** The model for `kind`, or a NoModelError saying why there is none. */
  active(kind: ModelKind): ActiveModel {
    const picked = this.state.get<string>(STATE_KEY(kind));
    if (picked) return { path: picked, source: 'picked' };
    // `visionInspector.model` names the classifier that Inspect Image runs (ViT); the CLIP and
    // Fuyu views will bring settings of their own, so other kinds only have picks.
    if (kind !== 'vit') throw new NoModelError([]);
    const configured = configuredModelPaths();
    const fromSetting = configured.usable.find((c) => c.key === `${SECTION}.model`);
    if (fromSetting) return { path: fromSetting.path, source: 'settings' };
    throw new NoModelError(configured.blocked.filter((c) => c.key === `${SECTION}.model`));
  }

  /**
   * The model the inspector runs: the last one picked, whatever its kind (CLIP gets the CLIP tabs),
   * else `visionInspector.model` (which may also name a CLIP model).
   */
  inspectorModel(): ActiveModel {
    const picked = this.state.get<string>(INSPECTOR_KEY);
    if (picked) return { path: picked, source: 'picked' };
    return this.active('vit');
  }

  peekInspectorModel(): ActiveModel | undefined {
    try {
      return this.inspectorModel();
    } catch {
      return undefined;
    }
  }

  /** Like active(), but undefined instead of an error. */
  peek(kind: ModelKind): ActiveModel | undefined {
    try {
      return this.active(kind);
    } catch {
      return undefined;
    }
  }

  /**
   * The Fuyu model that answers V* questions (SPEC §7.4): the one picked for Fuyu, else the first
   * loadable Fuyu folder in `visionInspector.model` / `visionInspector.models`; undefined if none.
   */
  async answeringModel(): Promise<ActiveModel | undefined> {
    const picked = this.peek('fuyu');
    if (picked) return picked;
    for (const configured of configuredModelPaths().usable) {
      const model = await describeModelFolder(configured.path, 'settings');
      if (model?.kind === 'fuyu' && !model.problem) return { path: model.path, source: 'settings' };
    }
    return undefined;
  }

  async remember(kind: ModelKind, folder: string): Promise<void> {
    await this.state.update(STATE_KEY(kind), folder);
    this.changed.fire(kind);
  }

  /**
   * Shows the picker: models from settings, the workspace and the HF cache, plus "Browse…" and
   * "Download from Hugging Face…". Remembers and returns the choice, or undefined when dismissed
   * (or the download was cancelled or failed).
   */
  async pick(preferredKind?: ModelKind): Promise<{ path: string; kind: ModelKind } | undefined> {
    const quickPick = vscode.window.createQuickPick<ModelItem>();
    quickPick.title = 'Vision Inspector: Select Model';
    quickPick.placeholder = 'Hugging Face model folders (config.json + *.safetensors)';
    quickPick.matchOnDetail = true;
    quickPick.busy = true;
    const browse: ModelItem = { label: '$(folder-opened) Browse…', description: 'choose a model folder', alwaysShow: true };
    const download: ModelItem = { label: '$(cloud-download) Download from Hugging Face…', description: 'a known checkpoint or any model id', alwaysShow: true };
    quickPick.items = [browse, download];
    const items = this.candidates(preferredKind).then((list) => {
      quickPick.items = [...list, { label: '', kind: vscode.QuickPickItemKind.Separator }, browse, download];
      quickPick.busy = false;
    });
    quickPick.show();
    try {
      const chosen = await new Promise<ModelItem | undefined>((resolve) => {
        quickPick.onDidAccept(() => resolve(quickPick.selectedItems[0]));
        quickPick.onDidHide(() => resolve(undefined));
      });
      quickPick.hide();
      await items.catch(() => undefined);
      if (!chosen) return undefined;
      if (chosen !== browse && chosen !== download && !chosen.model) {
        void vscode.window.showWarningMessage('Vision Inspector: models that an untrusted workspace points to are not loaded. Trust the workspace, or browse to the folder yourself.');
        return undefined;
      }
      const folder = chosen.model?.path ?? (chosen === download ? await this.download() : await browseForFolder());
      if (!folder) return undefined;
      const model = chosen.model ?? (await describeModelFolder(folder, chosen === download ? 'hf-cache' : 'settings'));
      if (!model) {
        void vscode.window.showErrorMessage(`Vision Inspector: ${folder} is not a Hugging Face model folder (it needs config.json and *.safetensors weights).`);
        return undefined;
      }
      const kind = model.kind ?? preferredKind ?? 'vit';
      await this.state.update(INSPECTOR_KEY, model.path);
      await this.remember(kind, model.path);
      return { path: model.path, kind };
    } finally {
      quickPick.dispose();
    }
  }

  /** Asks which Hub model to download and downloads it; its snapshot folder, or undefined. */
  private async download(): Promise<string | undefined> {
    const reference = await askForHubModel();
    return reference ? (await downloadHubModel(reference, this.log))?.folder : undefined;
  }

  /** The picker's entries: settings, workspace and HF-cache models (each once), then blocked ones. */
  async candidates(preferredKind?: ModelKind): Promise<ModelItem[]> {
    const configured = configuredModelPaths();
    const [fromSettings, fromWorkspace, fromCache] = await Promise.all([
      Promise.all(configured.usable.map((c) => describeModelFolder(c.path, 'settings'))),
      discoverWorkspaceModels(),
      discoverHubCacheModels(),
    ]);
    const seen = new Set<string>();
    const active = preferredKind ? this.peek(preferredKind)?.path : undefined;
    const groups: [string, (DiscoveredModel | undefined)[]][] = [
      ['Settings', fromSettings],
      ['Workspace', fromWorkspace],
      ['Hugging Face cache', fromCache],
    ];
    const items: ModelItem[] = [];
    for (const [title, models] of groups) {
      const fresh = models.filter((m): m is DiscoveredModel => m !== undefined && !seen.has(m.path));
      if (fresh.length === 0) continue;
      items.push({ label: title, kind: vscode.QuickPickItemKind.Separator });
      for (const m of fresh) {
        seen.add(m.path);
        items.push({
          label: `${m.path === active ? '$(check) ' : ''}${m.label}`,
          description: m.problem ?? (m.modelType ? `${m.modelType}${m.kind ? '' : ' (not supported yet)'}` : 'no model_type'),
          detail: m.path,
          model: m,
        });
      }
    }
    for (const b of configured.blocked) {
      items.push({ label: `$(workspace-untrusted) ${path.basename(b.path)}`, description: 'not loaded in Restricted Mode', detail: `${b.path} (from ${b.key} in the workspace settings)` });
    }
    return items;
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}

export interface ModelItem extends vscode.QuickPickItem {
  model?: DiscoveredModel;
}

async function browseForFolder(): Promise<string | undefined> {
  const picked = await vscode.window.showOpenDialog({ canSelectFiles: false, canSelectFolders: true, canSelectMany: false, openLabel: 'Use Model Folder' });
  return picked?.[0]?.fsPath;
}
