/**
 * The inspector: one webview (an editor panel, or the "Open With… → Vision Inspector" custom
 * editor) showing one image through the active model. InspectorView is the host side of one
 * such webview; InspectorManager keeps them, reuses a panel per image, and knows which one is
 * active, for the Attention Explorer.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { CancelledError, UserError } from '../core/errors';
import {
  MAX_MATRIX_IMAGES,
  parseInspectorToHost,
  type ErrorAction,
  type ImageSetPurpose,
  type HostToInspectorMessage,
  type InspectorToHostMessage,
  type Selection,
} from '../shared/protocol';
import { buildImageSet, pickImageUris, type ChooseImagesArgs, type ImageSet } from './image-sets';
import type { FuyuResult, InspectionResult, InspectionService } from './inspection-service';
import { NoModelError, type ModelSelection } from './model-selection';
import { webviewHtml, webviewOptions } from './webview-html';

/** Webview requests that ask about one cached inspection result and get one reply. */
type ResultRequest = Extract<InspectorToHostMessage, { type: 'requestLayerAttention' | 'requestTokenRows' | 'requestRollout' | 'requestZeroShot' | 'requestTextHeatmap' | 'requestPatchFilters' | 'requestPaperFigures' | 'requestClipMatrix' | 'requestTextAttention' }>;
/** Image sets a view keeps (the newest per purpose is what its tab shows; older ids may still be asked for). */
const IMAGE_SETS_KEPT = 4;

export const INSPECTOR_VIEW_TYPE = 'visionInspector.inspector';
export const CUSTOM_EDITOR_VIEW_TYPE = 'visionInspector.imageEditor';

export interface InspectorDeps {
  extensionUri: vscode.Uri;
  service: InspectionService;
  models: ModelSelection;
  log: vscode.LogOutputChannel;
}

/** What the webview persists with setState, so a restored panel knows its image. */
export interface InspectorPanelState {
  imagePath?: string;
}

/** The panel's long jobs (runJob): at most one of each kind runs. */
type JobKind = 'search' | 'fuyu' | 'distance' | 'matrix';

export class InspectorView implements vscode.Disposable {
  private readonly selectionChanged = new vscode.EventEmitter<InspectorView>();
  /** The pinned selection or the result changed. */
  readonly onDidChange = this.selectionChanged.event;
  private readonly disposed = new vscode.EventEmitter<InspectorView>();
  readonly onDidDispose = this.disposed.event;
  private readonly disposables: vscode.Disposable[] = [this.selectionChanged, this.disposed];

  /** The ViT/CLIP result (the Attention Explorer follows it); undefined while a Fuyu result shows. */
  private current: InspectionResult | undefined;
  private currentFuyu: FuyuResult | undefined;
  private currentSelection: Selection | undefined;
  /** The last view-state message (status, inspection or error), re-sent when the webview (re)loads. */
  private lastState: HostToInspectorMessage | undefined;
  private running: AbortController | undefined;
  /** The panel's long jobs in progress, one per kind, by the webview's id for them (searchId, generationId, runId, requestId). */
  private readonly jobs = new Map<JobKind, { id: number; controller: AbortController }>();
  /** Chosen image sets by id (paths stay here; the webview knows names and thumbnails). */
  private readonly imageSets = new Map<number, ImageSet>();
  private nextSetId = 1;
  private isDisposed = false;

  constructor(
    readonly panel: vscode.WebviewPanel,
    readonly imageUri: vscode.Uri,
    readonly origin: 'panel' | 'editor',
    private readonly deps: InspectorDeps,
  ) {
    panel.webview.options = webviewOptions(deps.extensionUri);
    panel.webview.html = webviewHtml(panel.webview, deps.extensionUri, 'inspector', `Inspect ${path.basename(imageUri.fsPath)}`);
    panel.iconPath = vscode.Uri.joinPath(deps.extensionUri, 'media', 'inspector.svg');
    this.disposables.push(
      panel.webview.onDidReceiveMessage((raw: unknown) => {
        const message = parseInspectorToHost(raw);
        if (!message) {
          deps.log.warn(`inspector: ignored a malformed message from the webview: ${describe(raw)}`);
          return;
        }
        void this.handle(message).catch((err: unknown) => deps.log.error(`inspector: ${errorText(err)}`));
      }),
      panel.onDidDispose(() => this.dispose()),
    );
  }

  get result(): InspectionResult | undefined {
    return this.current;
  }

  get selection(): Selection | undefined {
    return this.currentSelection;
  }

  /** Runs the active model on the image (behind a progress notification with Cancel) and shows the result. */
  async run(): Promise<void> {
    this.running?.abort();
    const controller = new AbortController();
    this.running = controller;
    const imagePath = this.imageUri.fsPath;
    const imageName = path.basename(imagePath);
    const { log, service, models } = this.deps;
    try {
      const model = models.inspectorModel();
      await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Vision Inspector: ${imageName}`, cancellable: true },
        async (progress, token) => {
          const subscription = token.onCancellationRequested(() => controller.abort());
          try {
            const result = await service.inspect(imagePath, model.path, {
              signal: controller.signal,
              onPhase: (phase, message) => {
                progress.report({ message });
                this.postState({ type: 'status', phase, message, imageName });
              },
            });
            if (controller.signal.aborted) throw new CancelledError();
            this.show(result);
          } finally {
            subscription.dispose();
          }
        },
      );
    } catch (err) {
      if (this.running !== controller || this.isDisposed) return; // superseded by a newer run
      this.postState({ type: 'error', imageName, ...describeFailure(err, imagePath) });
      if (err instanceof CancelledError) log.info(`${imageName}: cancelled`);
      else log.error(`${imageName}: ${err instanceof Error && !(err instanceof UserError) ? (err.stack ?? err.message) : errorText(err)}`);
    } finally {
      if (this.running === controller) this.running = undefined;
    }
  }

  /** The Attention Explorer chose a layer, head or token: the webview applies it and reports back. */
  applySelection(selection: Partial<Selection>): void {
    void this.post({ type: 'applySelection', selection });
  }

  reveal(): void {
    this.panel.reveal(undefined, false);
  }

  /**
   * Images beside the inspected one for `purpose`: `given` files or folders, else the picker's.
   * The set goes to the webview, whose tab then asks for what it needs with the set's id.
   */
  async chooseImages(purpose: ImageSetPurpose, given?: ChooseImagesArgs['paths']): Promise<void> {
    const result = this.current;
    if (!result) {
      void vscode.window.showWarningMessage('Vision Inspector: inspect an image with a ViT or CLIP model first.');
      return;
    }
    const uris = await pickImageUris(purpose, given, this.imageUri);
    if (!uris || uris.length === 0 || this.isDisposed) return;
    const setId = this.nextSetId++;
    const set = await buildImageSet(setId, purpose, uris, purpose === 'clipMatrix' ? MAX_MATRIX_IMAGES : undefined);
    if (set.paths.length === 0) {
      void vscode.window.showWarningMessage(`Vision Inspector: no readable images among the ${uris.length} chosen item(s).`);
      return;
    }
    this.imageSets.set(setId, set);
    for (const id of this.imageSets.keys()) if (this.imageSets.size > IMAGE_SETS_KEPT) this.imageSets.delete(id);
    this.deps.log.info(`${result.imageName}: ${set.paths.length} image(s) chosen for ${purpose}${set.info.skipped ? ` (${set.info.skipped} skipped)` : ''}`);
    await this.post({ type: 'imageSet', resultId: result.id, set: set.info });
  }

  private imageSet(setId: number, purpose: ImageSetPurpose): ImageSet {
    const set = this.imageSets.get(setId);
    if (!set || set.info.purpose !== purpose) throw new UserError('those images are no longer chosen; choose them again.');
    return set;
  }

  dispose(): void {
    if (this.isDisposed) return;
    this.isDisposed = true;
    this.running?.abort();
    for (const job of this.jobs.values()) job.controller.abort();
    this.disposed.fire(this);
    for (const d of this.disposables) d.dispose();
    this.panel.dispose();
  }

  private show(result: InspectionResult | FuyuResult): void {
    if (result.modelKind === 'fuyu') {
      this.current = undefined;
      this.currentFuyu = result;
      this.currentSelection = undefined;
      this.panel.title = `Inspect ${result.imageName}`;
      this.postState(this.fuyuInspectionMessage(result));
      this.selectionChanged.fire(this);
      return;
    }
    this.currentFuyu = undefined;
    this.current = result;
    this.currentSelection = undefined; // until the webview reports what it shows
    this.panel.title = `Inspect ${result.imageName}`;
    this.postState(this.inspectionMessage(result));
    this.selectionChanged.fire(this);
  }

  private inspectionMessage(result: InspectionResult): HostToInspectorMessage {
    const common = {
        resultId: result.id,
        image: {
          name: result.imageName,
          path: result.imagePath,
          bytes: copyBuffer(result.displayBytes),
          mime: result.displayMime,
          width: result.width,
          height: result.height,
        },
        model: result.model,
        grid: result.grid,
        placement: result.placement,
        labels: result.labels,
        clsRows: this.deps.service.tokenRows(result, 0).buffer as ArrayBuffer,
        timings: result.timings,
    };
    return {
      type: 'inspection',
      inspection: result.modelKind === 'clip' ? { ...common, modelKind: 'clip', hasText: result.hasText } : { ...common, modelKind: 'vit' },
    };
  }

  private fuyuInspectionMessage(result: FuyuResult): HostToInspectorMessage {
    return { type: 'fuyuInspection', inspection: { ...result.inspection, image: { ...result.inspection.image, bytes: copyBuffer(result.displayBytes) } } };
  }

  private postState(message: HostToInspectorMessage): void {
    this.lastState = message;
    void this.post(message);
  }

  private async post(message: HostToInspectorMessage): Promise<void> {
    if (this.isDisposed) return;
    try {
      await this.panel.webview.postMessage(message);
    } catch {
      // The panel went away meanwhile; nothing to tell.
    }
  }

  /** The reply to one of the webview's requests about a cached result (buffers are copies: the cache keeps its own). */
  private async answer(message: ResultRequest, result: InspectionResult): Promise<HostToInspectorMessage> {
    const { service } = this.deps;
    const { requestId } = message;
    const resultId = result.id;
    switch (message.type) {
      case 'requestLayerAttention':
        return { type: 'layerAttention', requestId, resultId, layer: message.layer, data: service.layerAttention(result, message.layer) };
      case 'requestTokenRows':
        return { type: 'tokenRows', requestId, resultId, token: message.token, data: service.tokenRows(result, message.token).buffer as ArrayBuffer };
      case 'requestRollout': {
        const factors = await service.rolloutFactors(result, message.settings);
        return { type: 'rolloutFactors', requestId, resultId, settings: message.settings, data: factors.slice().buffer };
      }
      case 'requestZeroShot':
        return { type: 'zeroShot', requestId, resultId, scores: await service.zeroShot(result, message.labels, message.template) };
      case 'requestTextHeatmap': {
        const similarity = await service.textHeatmap(result, message.phrase, message.template);
        return { type: 'textHeatmap', requestId, resultId, phrase: message.phrase, similarity: similarity.slice().buffer };
      }
      case 'requestPaperFigures':
        return { type: 'paperFigures', requestId, resultId, figures: await service.paperFigures(result, message.rows, message.cols) };
      case 'requestPatchFilters': {
        const filters = await service.patchFilters(result);
        return { type: 'patchFilters', requestId, resultId, filters: { ...filters, tiles: filters.tiles.slice(0), responses: filters.responses.slice(0) } };
      }
      case 'requestClipMatrix': {
        const { labels, template, setId } = message;
        const paths = this.imageSet(setId, 'clipMatrix').paths;
        // Seconds for a few large images: behind a notification with Cancel; a newer matrix replaces it.
        const m = await this.runJob('matrix', requestId, `Vision Inspector: CLIP similarity of ${paths.length + 1} images × ${labels.length} texts`, (signal) =>
          service.clipMatrix(result, paths, labels, template, signal));
        const matrix = { setId, labels, template, rows: m.images, cosine: Array.from(m.cosine), logits: Array.from(m.logits), probabilities: Array.from(m.probabilities), scale: m.scale };
        return { type: 'clipMatrix', requestId, resultId, matrix };
      }
      case 'requestTextAttention': {
        const a = await service.textAttention(result, message.text, message.template);
        const { prompt, tokens, truncated, layers, heads, pooledAt } = a;
        return { type: 'textAttention', requestId, resultId, attention: { text: message.text, prompt, tokens, truncated, layers, heads, pooledAt, attentions: a.attentions.buffer as ArrayBuffer } };
      }
    }
  }

  private async handle(message: InspectorToHostMessage): Promise<void> {
    const { service } = this.deps;
    switch (message.type) {
      case 'ready':
        // A (re)loaded webview: give it the current state; buffers are copied afresh each time.
        if (this.lastState?.type === 'inspection' && this.current) this.lastState = this.inspectionMessage(this.current);
        if (this.lastState?.type === 'fuyuInspection' && this.currentFuyu) this.lastState = this.fuyuInspectionMessage(this.currentFuyu);
        if (this.lastState) await this.post(this.lastState);
        return;
      case 'requestLayerAttention':
      case 'requestTokenRows':
      case 'requestRollout':
      case 'requestZeroShot':
      case 'requestTextHeatmap':
      case 'requestPatchFilters':
      case 'requestPaperFigures':
      case 'requestClipMatrix':
      case 'requestTextAttention': {
        const result = service.get(message.resultId);
        if (!result) {
          await this.post({ type: 'requestFailed', requestId: message.requestId, message: 'That result is no longer cached; run the inspection again.' });
          return;
        }
        try {
          await this.post(await this.answer(message, result));
        } catch (err) {
          this.deps.log.warn(`${result.imageName}: ${message.type}: ${errorText(err)}`);
          await this.post({ type: 'requestFailed', requestId: message.requestId, message: errorText(err) });
        }
        return;
      }
      case 'startSearch':
        await this.search(message);
        return;
      case 'cancelSearch':
        this.cancelJob('search', message.searchId);
        return;
      case 'startFuyuGeneration':
        await this.generate(message);
        return;
      case 'cancelFuyuGeneration':
        this.cancelJob('fuyu', message.generationId);
        return;
      case 'chooseImages':
        if (this.current?.id === message.resultId) await this.chooseImages(message.purpose);
        return;
      case 'startDistanceOverImages':
        await this.distanceOverImages(message.runId, message.resultId, message.setId);
        return;
      case 'cancelDistanceOverImages':
        this.cancelJob('distance', message.runId);
        return;
      case 'selectionChanged':
        if (this.current?.id !== message.resultId) return;
        this.currentSelection = message.selection;
        this.selectionChanged.fire(this);
        return;
      case 'exportPng':
        await this.export(message.suggestedName, Buffer.from(message.base64, 'base64'), { 'PNG image': ['png'] });
        return;
      case 'exportJson':
        await this.export(message.suggestedName, Buffer.from(message.json, 'utf8'), { JSON: ['json'] });
        return;
      case 'action':
        await this.runAction(message.action);
        return;
      case 'log':
        this.deps.log[message.level](`webview: ${message.message}`);
        return;
    }
  }

  /** V* search with progress (in the notification and the webview) and Cancel in both. */
  private async search(request: Extract<InspectorToHostMessage, { type: 'startSearch' }>): Promise<void> {
    const { searchId, targets } = request;
    const result = this.deps.service.get(request.resultId);
    if (!result) {
      await this.post({ type: 'searchFailed', searchId, message: 'That result is no longer cached; run the inspection again.', cancelled: false });
      return;
    }
    const started = performance.now();
    try {
      const done = await this.runJob('search', searchId, `Vision Inspector: V* search in ${result.imageName}`, async (signal, report) => {
        const answering = request.question?.trim() ? await this.deps.models.answeringModel() : undefined;
        return this.deps.service.search(result, targets, {
          question: request.question,
          askTargets: request.askTargets,
          answerModelPath: answering?.path,
          onAnswerPhase: (message) => {
            report(message);
            void this.post({ type: 'searchProgress', searchId, target: '', steps: 0, message });
          },
          signal,
          onStep: (target, steps, step) => {
            const message = `"${target}": step ${steps}${step.kind === 'node' ? ` (${step.decision})` : ''}`;
            report(message);
            void this.post({ type: 'searchProgress', searchId, target, steps, message });
          },
        });
      });
      const ms = performance.now() - started;
      this.deps.log.info(`${result.imageName}: V* search for ${targets.map((t) => `"${t}"`).join(', ')}: ${done.searches.map((s) => `${s.status} in ${s.steps.length} steps`).join('; ')} (${done.stats.crops} crops, ${ms.toFixed(0)} ms)`);
      if (done.answer?.answer) this.deps.log.info(`${result.imageName}: ${done.answer.model} answered ${JSON.stringify(done.answer.answer.text)} to ${JSON.stringify(done.answer.question)}`);
      await this.post({ type: 'searchDone', searchId, searches: done.searches, stats: { ...done.stats, ms }, answer: done.answer });
    } catch (err) {
      const cancelled = err instanceof CancelledError;
      if (!cancelled) this.deps.log.error(`${result.imageName}: V* search: ${errorText(err)}`);
      await this.post({ type: 'searchFailed', searchId, message: cancelled ? 'Search cancelled.' : errorText(err), cancelled });
    }
  }

  /** Mean attention distance over a chosen set, with progress (notification and webview) and Cancel in both. */
  private async distanceOverImages(runId: number, resultId: string, setId: number): Promise<void> {
    const result = this.deps.service.get(resultId);
    let set: ImageSet;
    try {
      if (!result) throw new UserError('That result is no longer cached; run the inspection again.');
      set = this.imageSet(setId, 'attentionDistance');
    } catch (err) {
      await this.post({ type: 'distanceFailed', runId, message: errorText(err), cancelled: false });
      return;
    }
    const total = set.paths.length;
    try {
      const distance = await this.runJob('distance', runId, `Vision Inspector: mean attention distance over ${total} image(s)`, (signal, report) =>
        this.deps.service.distanceOverImages(result, set.paths, {
          signal,
          onImage: (done) => {
            const message = `${done} of ${total} images`;
            report(message, 100 / total);
            void this.post({ type: 'distanceProgress', runId, done, total, message });
          },
        }),
      );
      this.deps.log.info(`${result.imageName}: mean attention distance over ${distance.images} image(s)`);
      await this.post({ type: 'distanceDone', runId, distance });
    } catch (err) {
      const cancelled = err instanceof CancelledError;
      if (!cancelled) this.deps.log.error(`${result.imageName}: mean attention distance over images: ${errorText(err)}`);
      await this.post({ type: 'distanceFailed', runId, message: cancelled ? 'Cancelled.' : errorText(err), cancelled });
    }
  }

  /** Fuyu generation, each token posted as it is chosen; Cancel in the notification or the panel. */
  private async generate(request: Extract<InspectorToHostMessage, { type: 'startFuyuGeneration' }>): Promise<void> {
    const generationId = request.generationId;
    const result = this.deps.service.getFuyu(request.resultId);
    if (!result) {
      await this.post({ type: 'fuyuFailed', generationId, message: 'That result is no longer cached; run the inspection again.', cancelled: false });
      return;
    }
    const started = performance.now();
    try {
      const answer = await this.runJob('fuyu', generationId, `Vision Inspector: Fuyu on ${result.imageName}`, (signal, report) =>
        this.deps.service.generateFuyu(result, {
          prompt: request.prompt,
          maxNewTokens: request.maxNewTokens,
          weights: request.weights,
          signal,
          onPrompt: (tokens, sequenceLength) => void this.post({ type: 'fuyuPrompt', generationId, tokens, sequenceLength, weights: request.weights }),
          onProgress: (message) => {
            report(message);
            void this.post({ type: 'fuyuProgress', generationId, message });
          },
          onToken: (index, piece, text) => void this.post({ type: 'fuyuToken', generationId, index, piece, text }),
        }),
      );
      const ms = performance.now() - started;
      this.deps.log.info(`${result.imageName}: Fuyu (${request.weights}) answered ${JSON.stringify(answer.text)} (${answer.stopped}, ${ms.toFixed(0)} ms)`);
      await this.post({ type: 'fuyuDone', generationId, text: answer.text, stopped: answer.stopped, layers: answer.layers, rows: answer.rows, attention: answer.attention.buffer as ArrayBuffer, ms });
    } catch (err) {
      const cancelled = err instanceof CancelledError;
      if (!cancelled) this.deps.log.error(`${result.imageName}: Fuyu generation: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      await this.post({ type: 'fuyuFailed', generationId, message: cancelled ? 'Generation cancelled.' : errorText(err), cancelled });
    }
  }

  /**
   * Runs one of the panel's long jobs behind a progress notification: one job of a kind at a time
   * (a new one aborts the previous), aborted by the notification's Cancel or the panel's
   * (cancelJob). `work` reports progress to the notification. Throws CancelledError once aborted,
   * whatever the work itself threw.
   */
  private async runJob<T>(kind: JobKind, id: number, title: string, work: (signal: AbortSignal, report: (message: string, increment?: number) => void) => Promise<T>): Promise<T> {
    this.jobs.get(kind)?.controller.abort();
    const controller = new AbortController();
    this.jobs.set(kind, { id, controller });
    try {
      const value = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: true }, async (progress, token) => {
        const subscription = token.onCancellationRequested(() => controller.abort());
        try {
          return await work(controller.signal, (message, increment) => progress.report({ message, increment }));
        } finally {
          subscription.dispose();
        }
      });
      if (controller.signal.aborted) throw new CancelledError();
      return value;
    } catch (err) {
      throw controller.signal.aborted && !(err instanceof CancelledError) ? new CancelledError() : err;
    } finally {
      if (this.jobs.get(kind)?.controller === controller) this.jobs.delete(kind);
    }
  }

  /** Aborts the job of `kind` if it is the one the webview means by `id`. */
  private cancelJob(kind: JobKind, id: number): void {
    const job = this.jobs.get(kind);
    if (job?.id === id) job.controller.abort();
  }

  private async runAction(action: ErrorAction): Promise<void> {
    switch (action) {
      case 'retry':
        await this.run();
        return;
      case 'cancel':
        this.running?.abort();
        return;
      case 'selectModel': {
        const picked = await this.deps.models.pick('vit');
        if (picked) await this.run();
        return;
      }
      case 'showLog':
        this.deps.log.show();
        return;
      case 'manageTrust':
        await vscode.commands.executeCommand('workbench.trust.manage');
        return;
    }
  }

  /** Asks where to save (next to the image by default; never written without the user choosing). */
  private async export(suggestedName: string, bytes: Uint8Array, filters: Record<string, string[]>): Promise<void> {
    const target = await vscode.window.showSaveDialog({
      defaultUri: vscode.Uri.joinPath(this.imageUri, '..', suggestedName),
      filters,
      saveLabel: 'Export',
    });
    if (!target) return;
    await vscode.workspace.fs.writeFile(target, bytes);
    this.deps.log.info(`exported ${target.fsPath}`);
    void vscode.window.showInformationMessage(`Vision Inspector: saved ${path.basename(target.fsPath)}`);
  }
}

export class InspectorManager implements vscode.Disposable {
  private readonly views = new Set<InspectorView>();
  private activeView: InspectorView | undefined;
  private readonly activeChanged = new vscode.EventEmitter<InspectorView | undefined>();
  /** The inspector the Attention Explorer follows changed, or its result or selection did. */
  readonly onDidChangeActive = this.activeChanged.event;

  constructor(private readonly deps: InspectorDeps) {}

  get active(): InspectorView | undefined {
    return this.activeView;
  }

  /** Shows the inspector for an image: reuses its panel if one is open, else opens one and runs the model. */
  async inspect(imageUri: vscode.Uri): Promise<InspectorView> {
    const existing = [...this.views].find((v) => v.origin === 'panel' && v.imageUri.toString() === imageUri.toString());
    if (existing) {
      existing.reveal();
      // Re-running is cheap when cached, and picks up a newly selected model.
      await existing.run();
      return existing;
    }
    const panel = vscode.window.createWebviewPanel(INSPECTOR_VIEW_TYPE, `Inspect ${path.basename(imageUri.fsPath)}`, vscode.ViewColumn.Active, webviewOptions(this.deps.extensionUri));
    const view = this.adopt(panel, imageUri, 'panel');
    await view.run();
    return view;
  }

  /** Takes over a panel VS Code made (custom editor, or a panel restored after a reload). */
  adopt(panel: vscode.WebviewPanel, imageUri: vscode.Uri, origin: 'panel' | 'editor'): InspectorView {
    const view = new InspectorView(panel, imageUri, origin, this.deps);
    this.views.add(view);
    const changes = view.onDidChange(() => {
      if (this.activeView === view) this.activeChanged.fire(view);
    });
    const states = panel.onDidChangeViewState(() => {
      if (panel.active) this.setActive(view);
    });
    view.onDidDispose(() => {
      this.views.delete(view);
      changes.dispose();
      states.dispose();
      if (this.activeView === view) this.setActive([...this.views].find((v) => v.panel.visible));
    });
    this.setActive(view);
    return view;
  }

  /** Re-runs every open inspector (the model changed). */
  async rerunAll(): Promise<void> {
    await Promise.all([...this.views].map((v) => v.run()));
  }

  private setActive(view: InspectorView | undefined): void {
    if (this.activeView === view) return;
    this.activeView = view;
    this.activeChanged.fire(view);
  }

  dispose(): void {
    for (const v of [...this.views]) v.dispose();
    this.activeChanged.dispose();
  }
}

/** The message and buttons the panel shows for a failed run. */
export function describeFailure(err: unknown, imagePath: string): { message: string; actions: ErrorAction[] } {
  if (err instanceof CancelledError) return { message: 'Cancelled.', actions: ['retry'] };
  if (err instanceof NoModelError) return { message: err.message, actions: err.blocked.length > 0 ? ['manageTrust', 'selectModel'] : ['selectModel'] };
  // A problem with the image itself: another model would not help.
  if (err instanceof UserError && err.file === imagePath) return { message: err.message, actions: ['retry', 'showLog'] };
  if (err instanceof UserError) return { message: err.message, actions: ['selectModel', 'retry', 'showLog'] };
  return { message: `Something went wrong: ${errorText(err)}`, actions: ['retry', 'showLog'] };
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function copyBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.slice().buffer as ArrayBuffer;
}

function describe(raw: unknown): string {
  try {
    return JSON.stringify(raw).slice(0, 200);
  } catch {
    return typeof raw;
  }
}
