import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { activeTabImage } from '../../../src/host/image-target';
import { discoverWorkspaceModels } from '../../../src/host/model-discovery';
import { KNOWN_CHECKPOINTS, describeProgress } from '../../../src/host/model-download';
import { ModelSelection, NoModelError } from '../../../src/host/model-selection';
import { parseHubReference } from '../../../src/core/io/hub-layout';
import { configuredModelPaths, engineSettings } from '../../../src/host/settings';

const EXTENSION_ID = 'vision-inspector.vision-inspector';

/** A Memento in memory, for ModelSelection. */
class MemoryMemento implements vscode.Memento {
  private readonly values = new Map<string, unknown>();
  keys(): readonly string[] {
    return [...this.values.keys()];
  }
  get<T>(key: string, fallback?: T): T | undefined {
    return (this.values.has(key) ? this.values.get(key) : fallback) as T | undefined;
  }
  async update(key: string, value: unknown): Promise<void> {
    if (value === undefined) this.values.delete(key);
    else this.values.set(key, value);
  }
}

function workspaceDir(): string {
  const folder = vscode.workspace.workspaceFolders?.[0];
  assert.ok(folder, 'the harness opens a workspace folder');
  return folder.uri.fsPath;
}

/** Resolves when `condition` holds, polling; rejects after `timeout`. */
async function until(condition: () => boolean, what: string, timeout = 60_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function inspectorTabs(): vscode.Tab[] {
  return vscode.window.tabGroups.all.flatMap((g) => g.tabs).filter((t) => t.input instanceof vscode.TabInputWebview && t.input.viewType.includes('visionInspector.inspector'));
}

export function defineHostTests(): void {
  describe('extension host: activation and commands', () => {
    it('is not active before a command runs (implicit activation, no "*")', () => {
      const extension = vscode.extensions.getExtension(EXTENSION_ID);
      assert.ok(extension, 'the extension under development is loaded');
      assert.equal(extension.isActive, false);
      assert.deepEqual(extension.packageJSON.extensionKind, ['workspace']);
      assert.equal(extension.packageJSON.capabilities.untrustedWorkspaces.supported, 'limited');
    });

    it('registers its commands once activated', async () => {
      await vscode.commands.executeCommand('visionInspector.showLog');
      assert.equal(vscode.extensions.getExtension(EXTENSION_ID)!.isActive, true);
      const commands = await vscode.commands.getCommands(true);
      for (const c of ['visionInspector.inspectImage', 'visionInspector.selectModel', 'visionInspector.showLog', 'visionInspector.chooseImages']) assert.ok(commands.includes(c), c);
    });

    it('Inspect Image with a file opens an inspector panel for it', async () => {
      const uri = vscode.Uri.file(path.join(workspaceDir(), 'cat.png'));
      await vscode.commands.executeCommand('visionInspector.inspectImage', uri);
      await until(() => inspectorTabs().some((t) => t.label === 'Inspect cat.png'), 'the "Inspect cat.png" tab');
    });

    it('without an argument, takes the image shown in the active tab', async () => {
      await vscode.commands.executeCommand('workbench.action.closeAllEditors');
      const coffee = vscode.Uri.file(path.join(workspaceDir(), 'coffee.jpg'));
      await vscode.commands.executeCommand('vscode.open', coffee);
      await until(() => activeTabImage()?.fsPath === coffee.fsPath, 'coffee.jpg in the image preview');
      await vscode.commands.executeCommand('visionInspector.inspectImage');
      await until(() => inspectorTabs().some((t) => t.label === 'Inspect coffee.jpg'), 'the "Inspect coffee.jpg" tab');
      await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    });
  });

  describe('extension host: settings', () => {
    const config = () => vscode.workspace.getConfiguration('visionInspector');

    it('resolves the workspace\'s relative model path against the workspace folder', () => {
      const paths = configuredModelPaths();
      assert.deepEqual(paths.blocked, [], 'the harness trusts the workspace');
      assert.deepEqual(paths.usable[0], { path: path.join(workspaceDir(), 'models', 'vit-photo-demo'), scope: 'workspace', key: 'visionInspector.model' });
    });

    it('lists extra folders from visionInspector.models after the model, each once', async () => {
      const extra = path.join(workspaceDir(), 'models', 'elsewhere');
      await config().update('models', ['models/vit-photo-demo', extra], vscode.ConfigurationTarget.Workspace);
      try {
        assert.deepEqual(configuredModelPaths().usable.map((p) => p.path), [path.join(workspaceDir(), 'models', 'vit-photo-demo'), extra]);
      } finally {
        await config().update('models', undefined, vscode.ConfigurationTarget.Workspace);
      }
    });

    it('reads threads and the execution provider, with CPU as the fallback', async () => {
      assert.deepEqual(engineSettings(), { threads: 1, executionProviders: ['cpu'] });
      await config().update('executionProvider', 'cuda', vscode.ConfigurationTarget.Workspace);
      await config().update('threads', 0, vscode.ConfigurationTarget.Workspace);
      try {
        assert.deepEqual(engineSettings(), { threads: undefined, executionProviders: ['cuda', 'cpu'] });
      } finally {
        await config().update('executionProvider', undefined, vscode.ConfigurationTarget.Workspace);
        await config().update('threads', 1, vscode.ConfigurationTarget.Workspace);
      }
    });
  });

  describe('extension host: Download from Hugging Face', () => {
    it('offers only valid hub ids, with no sizes written in', () => {
      for (const c of KNOWN_CHECKPOINTS) {
        assert.deepEqual(parseHubReference(c.id), { repoId: c.id, revision: 'main' });
        assert.doesNotMatch(`${c.description} ${c.detail ?? ''}`, /\d\s*(?:[kMGT]B\b|bytes)/, 'sizes come from the server');
      }
      assert.match(KNOWN_CHECKPOINTS.find((c) => c.id === 'adept/fuyu-8b')?.detail ?? '', /int4/);
    });

    it('describes progress with the size the server reported and the rate', () => {
      assert.equal(describeProgress({ bytes: 0, total: 0, rate: 0 }), '0 B');
      assert.equal(describeProgress({ bytes: 12_300_000, total: 74_100_000, rate: 2_100_000 }), '12.3 MB of 74.1 MB · 2.10 MB/s');
    });
  });

  describe('extension host: model picker', () => {
    it('finds the model folder in the workspace', async () => {
      const models = await discoverWorkspaceModels();
      const demo = models.find((m) => m.path === path.join(workspaceDir(), 'models', 'vit-photo-demo'));
      assert.ok(demo, `found: ${models.map((m) => m.path).join(', ')}`);
      assert.equal(demo.kind, 'vit');
      assert.equal(demo.modelType, 'vit');
      assert.equal(demo.problem, undefined);
    });

    it('offers the settings model once, marked as active', async () => {
      const selection = new ModelSelection(new MemoryMemento());
      try {
        const items = await selection.candidates('vit');
        const demo = items.filter((i) => i.detail === path.join(workspaceDir(), 'models', 'vit-photo-demo'));
        assert.equal(demo.length, 1, 'listed under Settings only, not again under Workspace');
        assert.match(demo[0]!.label, /^\$\(check\) /);
        assert.ok(items.some((i) => i.kind === vscode.QuickPickItemKind.Separator && i.label === 'Settings'));
      } finally {
        selection.dispose();
      }
    });

    it('uses the settings model, then a remembered pick per kind, dropped when the setting changes', async () => {
      const selection = new ModelSelection(new MemoryMemento());
      try {
        assert.deepEqual(selection.active('vit'), { path: path.join(workspaceDir(), 'models', 'vit-photo-demo'), source: 'settings' });
        assert.throws(() => selection.active('clip'), NoModelError, 'no CLIP model configured');
        await selection.remember('clip', '/models/clip');
        assert.deepEqual(selection.active('clip'), { path: '/models/clip', source: 'picked' });
        await selection.remember('vit', '/models/other-vit');
        assert.equal(selection.active('vit').source, 'picked');
        const changed = new Promise<void>((resolve) => selection.onDidChange(() => resolve()));
        await vscode.workspace.getConfiguration('visionInspector').update('threads', 1, vscode.ConfigurationTarget.Workspace); // unrelated: nothing changes
        await vscode.workspace.getConfiguration('visionInspector').update('model', 'models/vit-photo-demo/', vscode.ConfigurationTarget.Workspace);
        await changed;
        await until(() => selection.active('vit').source === 'settings', 'the pick to be dropped');
        assert.equal(selection.active('clip').source, 'picked', 'other kinds keep theirs');
      } finally {
        await vscode.workspace.getConfiguration('visionInspector').update('model', 'models/vit-photo-demo', vscode.ConfigurationTarget.Workspace);
        selection.dispose();
      }
    });
  });
}
