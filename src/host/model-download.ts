/**
 * "Download from Hugging Face…" in the model picker: a short list of checkpoints known to work, or
 * any id the user types, fetched into the Hugging Face cache (core/io/hub-download.ts) behind a
 * cancellable progress notification. HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE are read from the
 * extension host's environment, as the CLI reads them from its own. Nothing here runs unless the
 * user picked it, so a workspace (trusted or not) can never start a download on its own.
 */
import * as vscode from 'vscode';
import { CancelledError } from '../core/errors';
import { parseHubReference, resolveModelReference, type ResolvedModel } from '../core/io/hub-cache';
import { formatBytes, type DownloadProgress } from '../core/io/hub-download';
import { SUPPORTED_MODEL_TYPES } from '../core/models/runner';

export interface KnownCheckpoint {
  id: string;
  description: string;
  detail?: string;
}

/** Checkpoints the inspector has been run on. Sizes are not listed: the server's figure shows once the download starts. */
export const KNOWN_CHECKPOINTS: readonly KnownCheckpoint[] = [
  { id: 'google/vit-base-patch16-224', description: 'ViT-B/16, ImageNet classifier' },
  { id: 'openai/clip-vit-base-patch32', description: 'CLIP ViT-B/32' },
  { id: 'openai/clip-vit-large-patch14', description: 'CLIP ViT-L/14' },
  {
    id: 'adept/fuyu-8b',
    description: 'Fuyu-8B: large (8 billion parameters)',
    detail: 'A download of many gigabytes (its size shows once it starts). Runs with int4 weights converted once, kept outside the model folder; the Fuyu tab shows its memory estimate before loading.',
  },
];

interface HubItem extends vscode.QuickPickItem {
  /** The reference to download; undefined for a typed value that is not a model id. */
  reference?: string;
}

const TYPED_INVALID_DETAIL = 'Not a Hugging Face model id: type org/name, or org/name@revision.';

/**
 * Asks which model to download (a known checkpoint or a typed id). Undefined when dismissed.
 * A typed value that is not a model id stays in the list with the reason, and cannot be accepted.
 */
export async function askForHubModel(): Promise<string | undefined> {
  const quickPick = vscode.window.createQuickPick<HubItem>();
  quickPick.title = 'Vision Inspector: Download from Hugging Face';
  quickPick.placeholder = 'Choose a checkpoint, or type a model id (org/name or org/name@revision)';
  quickPick.matchOnDescription = true;
  const known: HubItem[] = KNOWN_CHECKPOINTS.map((c) => ({ label: c.id, description: c.description, detail: c.detail, reference: c.id }));
  quickPick.items = known;
  const disposables: vscode.Disposable[] = [quickPick];
  try {
    return await new Promise<string | undefined>((resolve) => {
      disposables.push(
        quickPick.onDidChangeValue((value) => {
          const typed = value.trim();
          if (typed === '' || known.some((k) => k.reference === typed)) {
            quickPick.items = known;
            return;
          }
          const item: HubItem = parseHubReference(typed)
            ? { label: `$(cloud-download) ${typed}`, description: 'download this model', reference: typed, alwaysShow: true }
            : { label: `$(error) ${typed}`, detail: TYPED_INVALID_DETAIL, alwaysShow: true };
          quickPick.items = [item, ...known];
        }),
        quickPick.onDidAccept(() => {
          const reference = quickPick.selectedItems[0]?.reference;
          if (reference) resolve(reference);
        }),
        quickPick.onDidHide(() => resolve(undefined)),
      );
      quickPick.show();
    });
  } finally {
    for (const d of disposables) d.dispose();
  }
}

/** "12.3 MB of 74.1 MB · 2.10 MB/s", or less while the sizes are still being worked out. */
export function describeProgress(p: Pick<DownloadProgress, 'bytes' | 'total' | 'rate'>): string {
  const amount = p.total > 0 ? `${formatBytes(p.bytes)} of ${formatBytes(p.total)}` : formatBytes(p.bytes);
  return p.rate > 0 ? `${amount} · ${formatBytes(Math.round(p.rate))}/s` : amount;
}

/** VS Code redraws a notification per report: a download reports per chunk, far more often than anyone can read. */
const REPORT_INTERVAL_MS = 200;

/**
 * Downloads `reference` (or finds it complete in the cache) with a progress notification whose
 * Cancel aborts it. Returns the model folder; undefined when cancelled (silently) or failed
 * (after an error message saying why).
 */
export async function downloadHubModel(reference: string, log?: vscode.LogOutputChannel): Promise<ResolvedModel | undefined> {
  const controller = new AbortController();
  try {
    return await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Vision Inspector: downloading ${reference}`, cancellable: true },
      async (progress, token) => {
        const subscription = token.onCancellationRequested(() => controller.abort());
        let reportedPercent = 0;
        let lastReport = 0;
        try {
          progress.report({ message: 'asking the Hub for the file list…' });
          const resolved = await resolveModelReference(reference, {
            hubOnly: true,
            signal: controller.signal,
            modelTypes: SUPPORTED_MODEL_TYPES,
            onProgress: (p) => {
              const now = Date.now();
              const done = p.total > 0 && p.bytes >= p.total;
              if (now - lastReport < REPORT_INTERVAL_MS && !done) return;
              lastReport = now;
              // The total grows while the file list is worked out, so the percentage can dip: the bar only moves forward.
              const percent = p.total > 0 ? (100 * p.bytes) / p.total : 0;
              const increment = Math.max(0, percent - reportedPercent);
              reportedPercent += increment;
              progress.report({ message: describeProgress(p), increment });
            },
          });
          log?.info(`${reference}: ${resolved.source === 'cache' ? 'already in the Hugging Face cache' : 'downloaded'} at ${resolved.folder}`);
          return resolved;
        } finally {
          subscription.dispose();
        }
      },
    );
  } catch (err) {
    if (err instanceof CancelledError || controller.signal.aborted) {
      log?.info(`${reference}: download cancelled`);
      return undefined;
    }
    const message = describeError(err);
    log?.error(`${reference}: download failed: ${message}`);
    void vscode.window.showErrorMessage(`Vision Inspector: could not download ${reference}. ${message}`);
    return undefined;
  }
}

/** An error's message, with the network cause Node's fetch hides behind "fetch failed". */
function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? ` (${err.cause.message})` : '';
  return `${err.message}${cause}`;
}
