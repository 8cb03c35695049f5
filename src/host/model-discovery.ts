/**
 * Model folders for the picker, from the core's hub module (the HF cache and workspace search),
 * described the way the picker lists them.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { findWorkspaceModels, isLoadable, listCachedModels } from '../core/io/hub-cache';
import { summarizeModelFolder, type ModelSummary } from '../core/io/hub-layout';
import type { ModelKind } from '../shared/protocol';

export interface DiscoveredModel {
  /** The folder holding config.json. */
  path: string;
  /** A name for lists: the folder name, or the hub id for cache snapshots. */
  label: string;
  modelType: string | undefined;
  kind: ModelKind | undefined;
  origin: 'settings' | 'workspace' | 'hf-cache';
  /** Why it cannot be opened (incomplete download, pickle only…), when it cannot. */
  problem?: string;
}

/** Which of our views a config.json `model_type` belongs to. */
export function kindOfModelType(modelType: string | undefined): ModelKind | undefined {
  switch (modelType) {
    case 'vit':
    case 'deit':
      return 'vit';
    case 'clip':
      return 'clip';
    case 'fuyu':
      return 'fuyu';
    default:
      return undefined;
  }
}

function describe(summary: ModelSummary, origin: DiscoveredModel['origin'], label: string): DiscoveredModel {
  const problem = isLoadable(summary.files)
    ? undefined
    : summary.files.pickleOnly
      ? 'pickle weights only (never loaded)'
      : !summary.files.config
        ? 'no config.json'
        : 'safetensors weights incomplete';
  return { path: summary.folder, label, modelType: summary.modelType, kind: kindOfModelType(summary.modelType), origin, problem };
}

/** A folder named in the settings; undefined when it does not exist or holds no model files. */
export async function describeModelFolder(folder: string, origin: DiscoveredModel['origin']): Promise<DiscoveredModel | undefined> {
  const summary = await summarizeModelFolder(folder);
  if (!summary.files.config && !summary.files.safetensors && !summary.files.pickleOnly) return undefined;
  return describe(summary, origin, path.basename(folder));
}

/** Model folders in every workspace folder (a few levels deep, node_modules and hidden folders skipped). */
export async function discoverWorkspaceModels(): Promise<DiscoveredModel[]> {
  const roots = vscode.workspace.workspaceFolders?.filter((f) => f.uri.scheme === 'file') ?? [];
  const lists = await Promise.all(roots.map((f) => findWorkspaceModels(f.uri.fsPath)));
  return lists.flat().map((m) => describe(m, 'workspace', path.basename(m.folder)));
}

export async function discoverHubCacheModels(): Promise<DiscoveredModel[]> {
  const cached = await listCachedModels();
  return cached.map((m) => describe(m, 'hf-cache', m.refs.includes('main') || cached.filter((c) => c.repoId === m.repoId).length === 1 ? m.repoId : `${m.repoId} @ ${m.commit.slice(0, 8)}`));
}
