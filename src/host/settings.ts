/**
 * The extension's settings, read in one place, with Restricted Mode applied: in an untrusted
 * workspace, model paths set by the workspace itself (its settings.json or a folder's) are not
 * used, only those from the user's own settings. This is enforced here rather than by listing the
 * settings under `restrictedConfigurations` in package.json: VS Code would then hide the workspace
 * values from `inspect()` too, and the extension could not tell the user what it skipped and why.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';

export const SECTION = 'visionInspector';

export const EXECUTION_PROVIDERS = ['cpu', 'cuda', 'dml', 'coreml'] as const;
export type ExecutionProviderSetting = (typeof EXECUTION_PROVIDERS)[number];

export interface EngineSettings {
  /** undefined: one per physical core. */
  threads?: number;
  /** In order of preference; the CPU provider always comes last as the fallback. */
  executionProviders: string[];
}

export function engineSettings(): EngineSettings {
  const config = vscode.workspace.getConfiguration(SECTION);
  const threads = config.get<number>('threads', 0);
  const provider = config.get<string>('executionProvider', 'cpu');
  const valid = (EXECUTION_PROVIDERS as readonly string[]).includes(provider) ? provider : 'cpu';
  return {
    threads: Number.isInteger(threads) && threads > 0 ? threads : undefined,
    executionProviders: valid === 'cpu' ? ['cpu'] : [valid, 'cpu'],
  };
}

/** Whether a settings change means the inference worker must be restarted. */
export function affectsEngine(event: vscode.ConfigurationChangeEvent): boolean {
  return event.affectsConfiguration(`${SECTION}.threads`) || event.affectsConfiguration(`${SECTION}.executionProvider`);
}

export type SettingScope = 'user' | 'workspace' | 'workspaceFolder';

export interface ConfiguredPath {
  /** Absolute, with `~` and `${workspaceFolder}` expanded. */
  path: string;
  scope: SettingScope;
  key: string;
}

export interface ConfiguredPaths {
  usable: ConfiguredPath[];
  /** Set by an untrusted workspace, therefore not used. */
  blocked: ConfiguredPath[];
}

/**
 * Model folders from `visionInspector.model` (the default model) and `visionInspector.models`
 * (more folders for the picker), in that order, from every settings scope.
 */
export function configuredModelPaths(): ConfiguredPaths {
  const config = vscode.workspace.getConfiguration(SECTION);
  const trusted = vscode.workspace.isTrusted;
  const result: ConfiguredPaths = { usable: [], blocked: [] };
  const seen = new Set<string>();
  for (const key of ['model', 'models'] as const) {
    const values = config.inspect<string | string[]>(key);
    const scoped: [SettingScope, unknown][] = [
      ['workspaceFolder', values?.workspaceFolderValue],
      ['workspace', values?.workspaceValue],
      ['user', values?.globalValue],
    ];
    for (const [scope, value] of scoped) {
      const list = Array.isArray(value) ? value : typeof value === 'string' ? [value] : [];
      for (const raw of list) {
        if (typeof raw !== 'string' || raw.trim() === '') continue;
        const resolved = expandPath(raw.trim(), scope);
        if (seen.has(resolved)) continue;
        seen.add(resolved);
        const entry = { path: resolved, scope, key: `${SECTION}.${key}` };
        (trusted || scope === 'user' ? result.usable : result.blocked).push(entry);
      }
    }
  }
  return result;
}

/** `~`, `${workspaceFolder}` and paths relative to the first workspace folder (or the home folder). */
export function expandPath(raw: string, scope: SettingScope): string {
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  let p = raw.replace(/\$\{workspaceFolder\}/g, folder ?? '');
  if (p === '~' || p.startsWith('~/')) p = path.join(os.homedir(), p.slice(1));
  if (!path.isAbsolute(p)) p = path.resolve(scope === 'user' || !folder ? os.homedir() : folder, p);
  return path.normalize(p);
}
