/**
 * The inspector webview: the image with its patch grid and an attention map over it, the top
 * labels, a colour bar, and the layer × head thumbnails.
 *
 * Interaction never waits for the host: [CLS] rows of every layer and head arrive with the
 * result, the current layer's full attention [heads, N, N] is fetched once per layer (then any
 * hovered patch's row is a slice), and rollout factors once per rollout setting (then any
 * patch's rollout is a few vector–matrix products). Hover redraws touch two canvases only.
 */
import { LitElement, html, nothing, type PropertyValues } from 'lit';
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-progress-ring/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-badge/index.js';
import { rolloutRow } from '../../src/core/analysis/rollout.js';
import { layerRow, tokenRow } from '../../src/shared/attention-rows.js';
import { COLORMAPS, colormapTable, mapRange, type ColormapName, type ValueRange } from '../../src/shared/colormap.js';
import { scaleBox } from '../../src/shared/view-helpers.js';
import { gridRect, hitTestPatch, patchRect, patchToken, tokenPatch, type Rect } from '../../src/shared/patch-geometry.js';
import {
  HEAD_FUSIONS,
  MAX_TEXT_CHARS,
  parseHostToInspector,
  parseInspectorToHost,
  type ErrorAction,
  type FuyuInspection,
  type HostToInspectorMessage,
  type Inspection,
  type InspectorToHostMessage,
  type RolloutSettings,
  type Selection,
} from '../../src/shared/protocol.js';
import type { ColorBar } from '../common/colorbar.js';
import '../common/colorbar.js';
import { fitCanvas, PatchImage } from '../common/heatmap.js';
import '../common/thumbnail-grid.js';
import type { TileSelectDetail } from '../common/thumbnail-grid.js';
import { vscodeApi } from '../common/vscode-api.js';
import './clip-view.js';
import type { ClipView } from './clip-view.js';
import './conv-view.js';
import './fuyu-view.js';
import type { FuyuView } from './fuyu-view.js';
import type { HostRequest } from './host-request.js';
import './paper-view.js';
import type { PaperView } from './paper-view.js';
import './search-view.js';
import type { SearchView } from './search-view.js';

/** The inspector's tabs; CLIP adds its own, the convolution explorer needs no model; Fuyu has one view of its own. */
type Tab = 'attention' | 'clip' | 'conv' | 'paper' | 'search' | 'fuyu';
const TAB_LABELS: Record<Tab, [string, string]> = {
  attention: ['Attention', 'eye'],
  clip: ['CLIP', 'symbol-text'],
  conv: ['Convolution', 'symbol-misc'],
  paper: ['ViT paper', 'book'],
  search: ['V* search', 'search'],
  fuyu: ['Fuyu', 'comment-discussion'],
};

interface ViewSettings {
  opacity: number;
  colormap: ColormapName;
  smooth: boolean;
  showGrid: boolean;
  rollout: RolloutSettings;
}

interface PersistedState {
  /** Read by the host's panel serializer after a reload. */
  imagePath?: string;
  resultId?: string;
  selection?: Selection;
  view?: ViewSettings;
}

type Phase =
  | { kind: 'waiting' }
  | { kind: 'status'; message: string; imageName: string }
  | { kind: 'error'; message: string; imageName: string; actions: ErrorAction[] }
  | { kind: 'ready' };

const DEFAULT_VIEW: ViewSettings = { opacity: 0.6, colormap: 'viridis', smooth: false, showGrid: true, rollout: { headFusion: 'mean', discardRatio: 0 } };
/** Full layers kept in memory at once (ViT-L/14@336: 21 MB each). */
const LAYER_CACHE_BYTES = 256 * 1024 * 1024;
const ACTION_LABELS: Record<ErrorAction, [string, string]> = {
  retry: ['Retry', 'refresh'],
  selectModel: ['Select Model…', 'library'],
  showLog: ['Show Log', 'output'],
  manageTrust: ['Manage Workspace Trust', 'shield'],
  cancel: ['Cancel', 'close'],
};

function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

const api = vscodeApi<InspectorToHostMessage, PersistedState>();

interface Pending {
  resolve(message: HostToInspectorMessage): void;
  reject(error: Error): void;
}

export class InspectorApp extends LitElement {
  static override properties = {
    phase: { state: true },
    inspection: { state: true },
    fuyu: { state: true },
    selection: { state: true },
    view: { state: true },
    stageSize: { state: true },
    pinnedRows: { state: true },
    note: { state: true },
    tab: { state: true },
  };

  declare phase: Phase;
  declare inspection: Inspection | undefined;
  /** A Fuyu model's result: shown instead of `inspection` (no ViT-style attention tab). */
  declare fuyu: FuyuInspection | undefined;
  declare selection: Selection;
  declare view: ViewSettings;
  declare stageSize: { width: number; height: number };
  /** [layers, heads, tokens] of the pinned token (for the thumbnails). */
  declare pinnedRows: { token: number; rows: Float32Array } | undefined;
  declare note: string;
  declare tab: Tab;

  private hoverToken: number | undefined;
  private imageUrl: string | undefined;
  private clsRows = new Float32Array(0);
  private readonly layers = new Map<number, Float32Array>();
  private readonly layerRequests = new Map<number, Promise<Float32Array | undefined>>();
  private rollout: { key: string; factors: Float32Array[] } | undefined;
  private rolloutRequest: { key: string; promise: Promise<void> } | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextRequestId = 1;
  private patchImage: PatchImage | undefined;
  private frame = 0;
  private lastValues: { values: Float32Array; range: ValueRange; token: number } | undefined;
  private readonly resizeObserver = new ResizeObserver(() => this.measureStage());
  private readonly persisted: PersistedState;

  constructor() {
    super();
    this.persisted = api.getState() ?? {};
    this.phase = { kind: 'waiting' };
    this.inspection = undefined;
    this.fuyu = undefined;
    this.view = { ...DEFAULT_VIEW, ...this.persisted.view, rollout: { ...DEFAULT_VIEW.rollout, ...this.persisted.view?.rollout } };
    this.selection = this.persisted.selection ?? { layer: 0, head: 'mean', token: 0, mode: 'attention' };
    this.stageSize = { width: 0, height: 0 };
    this.pinnedRows = undefined;
    this.note = '';
    this.tab = 'attention';
  }

  // The app renders into the page (light DOM) so that the shared webview.css themes it.
  protected override createRenderRoot(): HTMLElement {
    return this;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    window.addEventListener('message', this.onMessage);
    window.addEventListener('resize', this.onWindowResize);
    api.postMessage({ type: 'ready' });
  }

  override disconnectedCallback(): void {
    window.removeEventListener('message', this.onMessage);
    window.removeEventListener('resize', this.onWindowResize);
    this.resizeObserver.disconnect();
    super.disconnectedCallback();
  }

  // ------------------------------------------------------------------------------------------
  // Messages

  private onMessage = (event: MessageEvent): void => {
    const i = this.inspection;
    const f = this.fuyu;
    const dims = i
      ? { layers: i.model.layers, heads: i.model.heads, tokens: i.grid.tokens, cells: i.grid.rows * i.grid.cols }
      : f ? { layers: f.model.layers, heads: f.model.heads, tokens: 0, cells: f.patchRows * f.patchCols } : undefined;
    const message = parseHostToInspector(event.data, dims);
    if (!message) {
      api.postMessage({ type: 'log', level: 'warn', message: `inspector ignored a malformed message of type ${String((event.data as { type?: unknown })?.type)}` });
      return;
    }
    switch (message.type) {
      case 'status':
        this.phase = { kind: 'status', message: message.message, imageName: message.imageName };
        return;
      case 'error':
        this.phase = { kind: 'error', message: message.message, imageName: message.imageName, actions: message.actions };
        return;
      case 'inspection':
        this.showInspection(message.inspection);
        return;
      case 'fuyuInspection':
        this.showFuyu(message.inspection);
        return;
      case 'fuyuPrompt':
      case 'fuyuProgress':
      case 'fuyuToken':
      case 'fuyuDone':
      case 'fuyuFailed':
        this.querySelector<FuyuView>('vi-fuyu-view')?.onHostMessage(message);
        return;
      case 'applySelection':
        if (this.inspection) this.pin({ ...this.selection, ...message.selection });
        return;
      case 'searchProgress':
      case 'searchDone':
      case 'searchFailed':
        this.querySelector<SearchView>('vi-search-view')?.onHostMessage(message);
        return;
      case 'imageSet':
        if (message.resultId !== this.inspection?.resultId) return;
        if (message.set.purpose === 'clipMatrix') this.querySelector<ClipView>('vi-clip-view')?.onImageSet(message.set);
        else this.querySelector<PaperView>('vi-paper-view')?.onImageSet(message.set);
        return;
      case 'distanceProgress':
      case 'distanceDone':
      case 'distanceFailed':
        this.querySelector<PaperView>('vi-paper-view')?.onHostMessage(message);
        return;
      case 'layerAttention':
      case 'tokenRows':
      case 'rolloutFactors':
      case 'zeroShot':
      case 'textHeatmap':
      case 'patchFilters':
      case 'paperFigures':
      case 'clipMatrix':
      case 'textAttention':
      case 'requestFailed': {
        const pending = this.pending.get(message.requestId);
        if (!pending) return;
        this.pending.delete(message.requestId);
        if (message.type === 'requestFailed') pending.reject(new Error(message.message));
        else pending.resolve(message);
        return;
      }
    }
  };

  /** For the tabs: numbers the request here, so ids stay unique across views. */
  private readonly ask: HostRequest = (message) => this.request({ ...message, requestId: this.nextRequestId++ });

  private request(message: InspectorToHostMessage & { requestId: number }): Promise<HostToInspectorMessage> {
    // The host drops what its validator refuses, so an answer would never come: refuse it here.
    if (!parseInspectorToHost(message)) {
      return Promise.reject(new Error(`The inspector takes texts (labels, template, phrase) of at most ${MAX_TEXT_CHARS} characters, and at most 64 labels; shorten them.`));
    }
    return new Promise((resolve, reject) => {
      this.pending.set(message.requestId, { resolve, reject });
      api.postMessage(message);
    });
  }

  private showInspection(inspection: Inspection): void {
    // The same result again (the webview was reloaded): restore what it showed.
    const restored = this.persisted.resultId === inspection.resultId ? this.persisted.selection : undefined;
    this.inspection = inspection;
    this.fuyu = undefined;
    this.clsRows = new Float32Array(inspection.clsRows);
    this.layers.clear();
    this.layerRequests.clear();
    this.rollout = undefined;
    this.rolloutRequest = undefined;
    this.pinnedRows = undefined;
    this.lastValues = undefined;
    this.hoverToken = undefined;
    if (this.imageUrl) URL.revokeObjectURL(this.imageUrl);
    this.imageUrl = URL.createObjectURL(new Blob([inspection.image.bytes], { type: inspection.image.mime }));
    this.selection = this.clamp(restored ?? { layer: inspection.model.layers - 1, head: 'mean', token: 0, mode: this.selection.mode });
    this.phase = { kind: 'ready' };
    if (!this.tabs().includes(this.tab)) this.tab = 'attention';
    this.afterSelectionChange(true);
  }

  private showFuyu(fuyu: FuyuInspection): void {
    this.inspection = undefined;
    this.fuyu = fuyu;
    if (this.imageUrl) URL.revokeObjectURL(this.imageUrl);
    this.imageUrl = URL.createObjectURL(new Blob([fuyu.image.bytes], { type: fuyu.image.mime }));
    this.tab = 'fuyu';
    this.phase = { kind: 'ready' };
    Object.assign(this.persisted, { imagePath: fuyu.image.path, resultId: fuyu.resultId });
    api.setState(this.persisted);
  }

  // ------------------------------------------------------------------------------------------
  // Selection

  private clamp(s: Selection): Selection {
    const inspection = this.inspection!;
    const { layers, heads } = inspection.model;
    return {
      layer: Math.min(Math.max(0, s.layer), layers - 1),
      head: s.head === 'mean' || s.head >= heads ? 'mean' : s.head,
      token: s.token < inspection.grid.tokens ? s.token : 0,
      mode: s.mode,
    };
  }

  /** Sets the pinned selection (from controls, a click, or the Attention Explorer). */
  private pin(next: Selection): void {
    const tokenChanged = next.token !== this.selection.token;
    this.selection = this.clamp(next);
    this.afterSelectionChange(tokenChanged);
  }

  private afterSelectionChange(tokenChanged: boolean): void {
    const inspection = this.inspection;
    if (!inspection) return;
    this.persist();
    api.postMessage({ type: 'selectionChanged', resultId: inspection.resultId, selection: this.selection });
    if (tokenChanged && this.selection.token !== 0) void this.loadPinnedRows(this.selection.token);
    if (this.selection.mode === 'attention') void this.ensureLayer(this.selection.layer);
    else void this.ensureRollout();
    this.scheduleDraw();
  }

  private persist(): void {
    Object.assign(this.persisted, { imagePath: this.inspection?.image.path ?? this.persisted.imagePath, resultId: this.inspection?.resultId, selection: this.selection, view: this.view });
    api.setState(this.persisted);
  }

  private setView(patch: Partial<ViewSettings>): void {
    const rolloutChanged = patch.rollout !== undefined;
    this.view = { ...this.view, ...patch };
    this.persist();
    if (rolloutChanged && this.selection.mode === 'rollout') void this.ensureRollout();
    this.scheduleDraw();
  }

  // ------------------------------------------------------------------------------------------
  // Data

  private async ensureLayer(layer: number): Promise<Float32Array | undefined> {
    const cached = this.layers.get(layer);
    if (cached) {
      // Most recently used last.
      this.layers.delete(layer);
      this.layers.set(layer, cached);
      return cached;
    }
    const inspection = this.inspection!;
    let request = this.layerRequests.get(layer);
    if (!request) {
      const resultId = inspection.resultId;
      request = this.request({ type: 'requestLayerAttention', requestId: this.nextRequestId++, resultId, layer })
        .then((m) => {
          if (m.type !== 'layerAttention' || this.inspection?.resultId !== resultId) return undefined;
          const data = new Float32Array(m.data);
          this.layers.set(layer, data);
          const maxLayers = Math.max(2, Math.floor(LAYER_CACHE_BYTES / data.byteLength));
          for (const key of this.layers.keys()) {
            if (this.layers.size <= maxLayers) break;
            if (key !== this.selection.layer) this.layers.delete(key);
          }
          this.scheduleDraw();
          return data;
        })
        .catch((err: Error) => {
          this.note = `Could not load layer ${layer}: ${err.message}`;
          return undefined;
        })
        .finally(() => this.layerRequests.delete(layer));
      this.layerRequests.set(layer, request);
    }
    return request;
  }

  private rolloutKey(): string {
    return `${this.view.rollout.headFusion}:${this.view.rollout.discardRatio}`;
  }

  private async ensureRollout(): Promise<void> {
    const key = this.rolloutKey();
    if (this.rollout?.key === key || this.rolloutRequest?.key === key) return;
    const inspection = this.inspection!;
    const settings = { ...this.view.rollout };
    this.note = 'Computing rollout…';
    const promise = this.request({ type: 'requestRollout', requestId: this.nextRequestId++, resultId: inspection.resultId, settings })
      .then((m) => {
        if (m.type !== 'rolloutFactors' || this.inspection?.resultId !== inspection.resultId || this.rolloutKey() !== key) return;
        const all = new Float32Array(m.data);
        const n = inspection.grid.tokens;
        this.rollout = { key, factors: Array.from({ length: inspection.model.layers }, (_, l) => all.subarray(l * n * n, (l + 1) * n * n)) };
        this.note = '';
        this.scheduleDraw();
      })
      .catch((err: Error) => {
        this.note = `Rollout failed: ${err.message}`;
      });
    this.rolloutRequest = { key, promise };
    await promise;
  }

  private async loadPinnedRows(token: number): Promise<void> {
    const inspection = this.inspection!;
    try {
      const m = await this.request({ type: 'requestTokenRows', requestId: this.nextRequestId++, resultId: inspection.resultId, token });
      if (m.type === 'tokenRows' && this.inspection?.resultId === inspection.resultId && this.selection.token === token) {
        this.pinnedRows = { token, rows: new Float32Array(m.data) };
      }
    } catch (err) {
      this.note = `Could not load token ${token}'s rows: ${(err as Error).message}`;
    }
  }

  /** The attention (or rollout) row of `token` under the current selection, or undefined while its data loads. */
  private rowOf(token: number): Float32Array | undefined {
    const inspection = this.inspection!;
    const { heads } = inspection.model;
    const n = inspection.grid.tokens;
    const { layer, head, mode } = this.selection;
    if (mode === 'rollout') {
      if (this.rollout?.key !== this.rolloutKey()) return undefined;
      return rolloutRow(this.rollout.factors, n, token, layer);
    }
    if (token === 0) return tokenRow(this.clsRows, heads, n, layer, head);
    if (this.pinnedRows?.token === token) return tokenRow(this.pinnedRows.rows, heads, n, layer, head);
    const data = this.layers.get(layer);
    if (!data) {
      void this.ensureLayer(layer);
      return undefined;
    }
    return layerRow(data, heads, n, head, token);
  }

  // ------------------------------------------------------------------------------------------
  // Drawing (outside lit's render: hovering must not re-render the template)

  private scheduleDraw(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  private displayScale(): number {
    const inspection = this.inspection;
    return inspection && this.stageSize.width > 0 ? this.stageSize.width / inspection.image.width : 0;
  }

  private toDisplay(r: Rect): Rect {
    return scaleBox(r, this.displayScale());
  }

  private draw(): void {
    const inspection = this.inspection;
    const heatmap = this.querySelector<HTMLCanvasElement>('#heatmap');
    const overlay = this.querySelector<HTMLCanvasElement>('#grid-overlay');
    if (!inspection || !heatmap || !overlay || this.stageSize.width === 0) return;
    const started = performance.now();
    const { grid, placement } = inspection;
    const { width, height } = this.stageSize;
    const token = this.hoverToken ?? this.selection.token;
    const area = this.toDisplay(gridRect(placement, grid));

    const ctx = fitCanvas(heatmap, width, height);
    ctx.clearRect(0, 0, width, height);
    const row = this.rowOf(token);
    if (row) {
      const range = mapRange(row, grid.prefixTokens, token);
      if (!this.patchImage || this.patchImage.rows !== grid.rows || this.patchImage.cols !== grid.cols) this.patchImage = new PatchImage(grid.rows, grid.cols);
      this.patchImage.paint(row, grid.prefixTokens, range, colormapTable(this.view.colormap));
      this.patchImage.drawOnto(ctx, area, this.view.smooth, this.view.opacity);
      this.lastValues = { values: row, range, token };
      const bar = this.querySelector<ColorBar>('vi-colorbar');
      if (bar) {
        bar.min = range.min;
        bar.max = range.max;
        bar.colormap = this.view.colormap;
      }
    }
    heatmap.dataset.token = String(token);
    heatmap.dataset.state = row ? 'drawn' : 'loading';

    const o = fitCanvas(overlay, width, height);
    o.clearRect(0, 0, width, height);
    const style = getComputedStyle(this);
    if (this.view.showGrid) {
      o.strokeStyle = 'rgba(255, 255, 255, 0.35)';
      o.lineWidth = 1;
      o.beginPath();
      for (let c = 0; c <= grid.cols; c++) {
        const x = Math.round(area.x + (c * area.width) / grid.cols) + 0.5;
        o.moveTo(x, area.y);
        o.lineTo(x, area.y + area.height);
      }
      for (let r = 0; r <= grid.rows; r++) {
        const y = Math.round(area.y + (r * area.height) / grid.rows) + 0.5;
        o.moveTo(area.x, y);
        o.lineTo(area.x + area.width, y);
      }
      o.stroke();
    }
    const outline = (t: number, color: string, widthPx: number): void => {
      const p = tokenPatch(grid, t);
      if (!p) return;
      const r = this.toDisplay(patchRect(placement, grid, p.row, p.col));
      o.strokeStyle = color;
      o.lineWidth = widthPx;
      o.strokeRect(r.x + widthPx / 2, r.y + widthPx / 2, r.width - widthPx, r.height - widthPx);
    };
    outline(this.selection.token, style.getPropertyValue('--vscode-focusBorder').trim() || '#0078d4', 2);
    if (this.hoverToken !== undefined && this.hoverToken !== this.selection.token) outline(this.hoverToken, '#ffffff', 1.5);

    const info = this.querySelector<HTMLElement>('#hover-info');
    if (info) info.textContent = this.describeToken(token, row);
    heatmap.dataset.redrawMs = (performance.now() - started).toFixed(2);
  }

  private describeToken(token: number, row: Float32Array | undefined): string {
    const inspection = this.inspection!;
    const p = tokenPatch(inspection.grid, token);
    const name = p ? `token ${token} · patch row ${p.row}, col ${p.col}` : token === 0 ? 'token 0 · [CLS]' : `token ${token} · prefix`;
    const what = this.selection.mode === 'rollout' ? `rollout through layer ${this.selection.layer}` : `layer ${this.selection.layer}, ${this.selection.head === 'mean' ? 'mean of heads' : `head ${this.selection.head}`}`;
    return `${name} — ${what}${row ? '' : ' (loading…)'}`;
  }

  // ------------------------------------------------------------------------------------------
  // Layout

  private onWindowResize = (): void => this.measureStage();

  private measureStage(): void {
    const wrap = this.querySelector<HTMLElement>('.stage-wrap');
    const inspection = this.inspection;
    if (!wrap || !inspection) return;
    const available = wrap.clientWidth;
    if (available === 0) return; // another tab is showing
    // Keep the whole image and the two lines under it in view.
    const maxHeight = Math.max(200, window.innerHeight - wrap.getBoundingClientRect().top - 70);
    const scale = Math.min(available / inspection.image.width, maxHeight / inspection.image.height);
    const width = Math.max(1, Math.floor(inspection.image.width * scale));
    const height = Math.max(1, Math.floor(inspection.image.height * scale));
    if (width !== this.stageSize.width || height !== this.stageSize.height) this.stageSize = { width, height };
  }

  protected override updated(changed: PropertyValues): void {
    // Sized through the CSSOM: the CSP blocks style="…" attributes (which lit's styleMap writes on first render).
    const stage = this.querySelector<HTMLElement>('#attention-tab .stage');
    if (stage) {
      stage.style.width = `${this.stageSize.width}px`;
      stage.style.height = `${this.stageSize.height}px`;
    }
    const wrap = this.querySelector<HTMLElement>('.stage-wrap');
    if (wrap) this.resizeObserver.observe(wrap);
    if (changed.has('inspection') || changed.has('phase')) this.measureStage();
    this.scheduleDraw();
  }

  // ------------------------------------------------------------------------------------------
  // Events

  private hitAt(event: MouseEvent): number | undefined {
    const inspection = this.inspection;
    const s = this.displayScale();
    if (!inspection || s === 0) return undefined;
    const rect = (event.currentTarget as HTMLElement).getBoundingClientRect();
    return hitTestPatch(inspection.placement, inspection.grid, (event.clientX - rect.left) / s, (event.clientY - rect.top) / s)?.token;
  }

  private onStageMove = (event: MouseEvent): void => {
    const token = this.hitAt(event);
    if (token === this.hoverToken) return;
    this.hoverToken = token;
    this.scheduleDraw();
  };

  private onStageLeave = (): void => {
    this.hoverToken = undefined;
    this.scheduleDraw();
  };

  private onStageClick = (event: MouseEvent): void => {
    const token = this.hitAt(event);
    if (token === undefined) return;
    // Clicking the pinned patch again goes back to [CLS].
    this.pin({ ...this.selection, token: token === this.selection.token ? 0 : token });
  };

  private onStageKey = (event: KeyboardEvent): void => {
    const inspection = this.inspection;
    if (!inspection) return;
    const { grid } = inspection;
    const current = tokenPatch(grid, this.selection.token) ?? { row: Math.floor(grid.rows / 2), col: Math.floor(grid.cols / 2) };
    const moves: Record<string, [number, number]> = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
    if (event.key === 'Escape') {
      this.pin({ ...this.selection, token: 0 });
    } else if (moves[event.key]) {
      const [dr, dc] = moves[event.key]!;
      const row = Math.min(grid.rows - 1, Math.max(0, current.row + (tokenPatch(grid, this.selection.token) ? dr : 0)));
      const col = Math.min(grid.cols - 1, Math.max(0, current.col + (tokenPatch(grid, this.selection.token) ? dc : 0)));
      this.pin({ ...this.selection, token: patchToken(grid, row, col) });
    } else {
      return;
    }
    event.preventDefault();
  };

  private onTileSelect = (event: CustomEvent<TileSelectDetail>): void => {
    this.pin({ ...this.selection, layer: event.detail.layer, head: event.detail.head, mode: 'attention' });
  };

  private selectValue(event: Event): string {
    return (event.target as HTMLSelectElement).value;
  }

  private exportName(ext: string): string {
    const inspection = this.inspection!;
    const base = inspection.image.name.replace(/\.[^.]+$/, '').replace(/[^\w.-]+/g, '_');
    const s = this.selection;
    const what = s.mode === 'rollout' ? `rollout-${this.view.rollout.headFusion}-d${this.view.rollout.discardRatio}-L${s.layer}` : `attn-L${s.layer}-${s.head === 'mean' ? 'mean' : `h${s.head}`}`;
    return `${base}-${what}-t${s.token}.${ext}`;
  }

  private async exportPng(): Promise<void> {
    const inspection = this.inspection;
    const values = this.lastValues;
    const img = this.querySelector<HTMLImageElement>('#image');
    if (!inspection || !values || !img) return;
    await img.decode().catch(() => undefined);
    const scale = Math.min(1, 2048 / Math.max(inspection.image.width, inspection.image.height));
    const canvas = document.createElement('canvas');
    canvas.width = Math.round(inspection.image.width * scale);
    canvas.height = Math.round(inspection.image.height * scale);
    const ctx = canvas.getContext('2d')!;
    ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
    const patches = new PatchImage(inspection.grid.rows, inspection.grid.cols);
    patches.paint(values.values, inspection.grid.prefixTokens, values.range, colormapTable(this.view.colormap));
    const area = gridRect(inspection.placement, inspection.grid);
    patches.drawOnto(ctx, scaleBox(area, scale), this.view.smooth, this.view.opacity);
    const base64 = canvas.toDataURL('image/png').split(',')[1] ?? '';
    api.postMessage({ type: 'exportPng', suggestedName: this.exportName('png'), base64 });
  }

  private exportJson(): void {
    const inspection = this.inspection;
    const values = this.lastValues;
    if (!inspection || !values) return;
    const { grid } = inspection;
    const map = Array.from({ length: grid.rows }, (_, r) => Array.from(values.values.subarray(grid.prefixTokens + r * grid.cols, grid.prefixTokens + (r + 1) * grid.cols)));
    const json = {
      image: inspection.image.path,
      model: { name: inspection.model.name, path: inspection.model.path, modelType: inspection.model.modelType },
      selection: { ...this.selection, token: values.token },
      rollout: this.selection.mode === 'rollout' ? this.view.rollout : undefined,
      grid,
      placement: inspection.placement,
      range: values.range,
      /** Attention (or rollout) to each prefix token ([CLS]…), then the patch map [rows][cols]. */
      prefix: Array.from(values.values.subarray(0, grid.prefixTokens)),
      map,
    };
    api.postMessage({ type: 'exportJson', suggestedName: this.exportName('json'), json: JSON.stringify(json, null, 1) });
  }

  // ------------------------------------------------------------------------------------------
  // Template

  override render() {
    const phase = this.phase;
    if (phase.kind === 'waiting') return html`<div class="center muted" id="waiting">Starting…</div>`;
    if (phase.kind === 'status' && !this.inspection && !this.fuyu) return this.renderStatus(phase.message, phase.imageName);
    if (phase.kind === 'error') return this.renderError(phase);
    if (this.fuyu) return this.renderFuyu(this.fuyu);
    const inspection = this.inspection;
    if (!inspection) return nothing;
    const busy = phase.kind === 'status' ? html`<div class="banner" id="rerun-status"><vscode-progress-ring></vscode-progress-ring>${phase.message}</div>` : nothing;
    return html`
      ${busy}
      <header class="title">
        <span class="codicon codicon-file-media"></span>
        <strong title=${inspection.image.path}>${inspection.image.name}</strong>
        <span class="muted">${inspection.image.width}×${inspection.image.height}</span>
        <span class="sep">·</span>
        <vscode-badge variant="counter" title=${inspection.model.path}>${inspection.model.modelType}</vscode-badge>
        <span title=${inspection.model.path}>${inspection.model.name}</span>
        <span class="muted">${inspection.grid.cols}×${inspection.grid.rows} patches of ${inspection.grid.patchSize} px, ${inspection.model.layers} layers × ${inspection.model.heads} heads</span>
        <span class="muted timing" id="timing" title="model load: building the graph and the ONNX Runtime session, once per model and input size"
          >${inspection.timings.cached
            ? 'cached'
            : `${inspection.timings.loadMs >= 1 ? `model load ${formatMs(inspection.timings.loadMs)} · ` : ''}inference ${formatMs(inspection.timings.inferenceMs)}`} · total ${formatMs(inspection.timings.totalMs)}</span
        >
      </header>
      <nav class="tabs" role="tablist">
        ${this.tabs().map((t) => html`<button role="tab" id=${`tab-${t}`} class=${t === this.tab ? 'tab active' : 'tab'} aria-selected=${t === this.tab ? 'true' : 'false'}
          @click=${() => (this.tab = t)}><span class="codicon codicon-${TAB_LABELS[t][1]}"></span>${TAB_LABELS[t][0]}</button>`)}
      </nav>
      ${inspection.modelKind === 'clip'
        ? html`<vi-clip-view ?hidden=${this.tab !== 'clip'} .inspection=${inspection} .imageUrl=${this.imageUrl ?? ''} .request=${this.ask}></vi-clip-view>
            <vi-search-view ?hidden=${this.tab !== 'search'} .inspection=${inspection} .imageUrl=${this.imageUrl ?? ''}></vi-search-view>`
        : nothing}
      <vi-conv-view ?hidden=${this.tab !== 'conv'} .active=${this.tab === 'conv'} .inspection=${inspection} .imageUrl=${this.imageUrl ?? ''} .request=${this.ask}></vi-conv-view>
      <vi-paper-view ?hidden=${this.tab !== 'paper'} .active=${this.tab === 'paper'} .inspection=${inspection} .request=${this.ask}></vi-paper-view>
      <div id="attention-tab" ?hidden=${this.tab !== 'attention'}>
      ${this.renderControls()}
      <div class="layout">
        <section class="main">
          <div class="stage-wrap">
            <div class="stage">
              <img id="image" alt=${inspection.image.name} src=${this.imageUrl ?? ''} class=${this.displayScale() > 2 ? 'pixelated' : ''} />
              <canvas id="heatmap"></canvas>
              <canvas
                id="grid-overlay"
                tabindex="0"
                aria-label="Patch grid: hover or click a patch to see its attention; arrow keys move, Escape returns to [CLS]"
                @mousemove=${this.onStageMove}
                @mouseleave=${this.onStageLeave}
                @click=${this.onStageClick}
                @keydown=${this.onStageKey}
              ></canvas>
            </div>
          </div>
          <div class="hover-info" id="hover-info" aria-live="polite"></div>
          <div class="pinned">
            ${this.selection.token === 0
              ? html`<span class="muted">Source: [CLS] token. Hover a patch to preview its attention, click to pin it.</span>`
              : html`<span>Source: token ${this.selection.token} (pinned)</span>
                  <vscode-button secondary icon="discard" id="reset-token" @click=${() => this.pin({ ...this.selection, token: 0 })}>Back to [CLS]</vscode-button>`}
          </div>
        </section>
        <aside class="side">
          ${this.renderLabels(inspection)}
          <h3>Colour scale</h3>
          <vi-colorbar id="colorbar" .colormap=${this.view.colormap} label=${this.selection.mode === 'rollout' ? 'rollout' : 'attention'}></vi-colorbar>
          ${this.note ? html`<p class="note" id="note">${this.note}</p>` : nothing}
          <h3>Layers × heads <span class="muted">(${this.selection.token === 0 ? '[CLS]' : `token ${this.selection.token}`}; click to select)</span></h3>
          <vi-thumbnail-grid
            id="thumbnails"
            .rows=${this.selection.token !== 0 && this.pinnedRows?.token === this.selection.token ? this.pinnedRows.rows : this.selection.token === 0 ? this.clsRows : undefined}
            .grid=${inspection.grid}
            .layers=${inspection.model.layers}
            .heads=${inspection.model.heads}
            .layer=${this.selection.layer}
            .head=${this.selection.head}
            .colormap=${this.view.colormap}
            max-tile="40"
            @tile-select=${this.onTileSelect}
          ></vi-thumbnail-grid>
        </aside>
      </div>
      </div>
    `;
  }

  private renderFuyu(fuyu: FuyuInspection) {
    const busy = this.phase.kind === 'status' ? html`<div class="banner" id="rerun-status"><vscode-progress-ring></vscode-progress-ring>${this.phase.message}</div>` : nothing;
    return html`
      ${busy}
      <header class="title">
        <span class="codicon codicon-file-media"></span>
        <strong title=${fuyu.image.path}>${fuyu.image.name}</strong>
        <span class="muted">${fuyu.image.width}×${fuyu.image.height}</span>
        <span class="sep">·</span>
        <vscode-badge variant="counter" title=${fuyu.model.path}>${fuyu.model.modelType}</vscode-badge>
        <span title=${fuyu.model.path}>${fuyu.model.name}</span>
        <span class="muted">${fuyu.patchCols}×${fuyu.patchRows} patches of ${fuyu.patchWidth}×${fuyu.patchHeight} px, ${fuyu.model.layers} layers × ${fuyu.model.heads} heads</span>
      </header>
      <nav class="tabs" role="tablist">
        <button role="tab" id="tab-fuyu" class="tab active" aria-selected="true"><span class="codicon codicon-${TAB_LABELS.fuyu[1]}"></span>${TAB_LABELS.fuyu[0]}</button>
      </nav>
      <vi-fuyu-view .inspection=${fuyu} .imageUrl=${this.imageUrl ?? ''}></vi-fuyu-view>
    `;
  }

  private tabs(): Tab[] {
    return this.inspection?.modelKind === 'clip' ? ['attention', 'clip', 'conv', 'paper', 'search'] : ['attention', 'conv', 'paper'];
  }

  private renderControls() {
    const inspection = this.inspection!;
    const s = this.selection;
    const v = this.view;
    return html`<div class="controls">
      <label>View
        <vscode-single-select id="mode-select" .value=${s.mode} @change=${(e: Event) => this.pin({ ...s, mode: this.selectValue(e) as Selection['mode'] })}>
          <vscode-option value="attention">Attention</vscode-option>
          <vscode-option value="rollout">Attention rollout</vscode-option>
        </vscode-single-select>
      </label>
      <label>Layer
        <vscode-single-select id="layer-select" .value=${String(s.layer)} @change=${(e: Event) => this.pin({ ...s, layer: Number(this.selectValue(e)) })}>
          ${Array.from({ length: inspection.model.layers }, (_, l) => html`<vscode-option value=${String(l)}>${s.mode === 'rollout' ? `through ${l}` : String(l)}</vscode-option>`)}
        </vscode-single-select>
      </label>
      ${s.mode === 'attention'
        ? html`<label>Head
            <vscode-single-select id="head-select" .value=${String(s.head)} @change=${(e: Event) => {
              const value = this.selectValue(e);
              this.pin({ ...s, head: value === 'mean' ? 'mean' : Number(value) });
            }}>
              <vscode-option value="mean">Mean of heads</vscode-option>
              ${Array.from({ length: inspection.model.heads }, (_, h) => html`<vscode-option value=${String(h)}>${h}</vscode-option>`)}
            </vscode-single-select>
          </label>`
        : html`<label>Head fusion
              <vscode-single-select id="fusion-select" .value=${v.rollout.headFusion} @change=${(e: Event) => this.setView({ rollout: { ...v.rollout, headFusion: this.selectValue(e) as RolloutSettings['headFusion'] } })}>
                ${HEAD_FUSIONS.map((f) => html`<vscode-option value=${f}>${f}</vscode-option>`)}
              </vscode-single-select>
            </label>
            <label>Discard <span class="value">${Math.round(v.rollout.discardRatio * 100)} %</span>
              <input id="discard-ratio" type="range" min="0" max="0.95" step="0.05" .value=${String(v.rollout.discardRatio)}
                @change=${(e: Event) => this.setView({ rollout: { ...v.rollout, discardRatio: Number((e.target as HTMLInputElement).value) } })} />
            </label>`}
      <label>Opacity <span class="value">${Math.round(v.opacity * 100)} %</span>
        <input id="opacity" type="range" min="0" max="1" step="0.05" .value=${String(v.opacity)} @input=${(e: Event) => this.setView({ opacity: Number((e.target as HTMLInputElement).value) })} />
      </label>
      <label>Colours
        <vscode-single-select id="colormap-select" .value=${v.colormap} @change=${(e: Event) => this.setView({ colormap: this.selectValue(e) as ColormapName })}>
          ${COLORMAPS.map((c) => html`<vscode-option value=${c}>${c}</vscode-option>`)}
        </vscode-single-select>
      </label>
      <vscode-checkbox id="smooth" .checked=${v.smooth} @change=${(e: Event) => this.setView({ smooth: (e.target as HTMLInputElement).checked })}>Interpolate</vscode-checkbox>
      <vscode-checkbox id="show-grid" .checked=${v.showGrid} @change=${(e: Event) => this.setView({ showGrid: (e.target as HTMLInputElement).checked })}>Patch grid</vscode-checkbox>
      <span class="spacer"></span>
      <vscode-button id="export-png" secondary icon="device-camera" @click=${() => void this.exportPng()}>PNG</vscode-button>
      <vscode-button id="export-json" secondary icon="json" @click=${() => this.exportJson()}>JSON</vscode-button>
    </div>`;
  }

  private renderLabels(inspection: Inspection) {
    if (inspection.modelKind === 'clip') return html`<h3>Labels</h3><p class="muted">CLIP has no classifier: its zero-shot labels are in the CLIP tab. These are the vision tower's attention maps.</p>`;
    if (inspection.labels.length === 0) return html`<h3>Labels</h3><p class="muted">This checkpoint has no classification head.</p>`;
    return html`<h3>Top ${inspection.labels.length} labels</h3>
      <ol class="labels" id="top-labels">
        ${inspection.labels.map(
          (l) => html`<li title="logit ${l.logit.toFixed(3)}">
            <span class="label">${l.label}</span><span class="prob">${(l.probability * 100).toFixed(1)} %</span>
            <progress class="bar" max="1" .value=${l.probability}></progress>
          </li>`,
        )}
      </ol>`;
  }

  private renderStatus(message: string, imageName: string) {
    return html`<div class="center" id="status-view">
      <vscode-progress-ring></vscode-progress-ring>
      <p><strong>${imageName}</strong></p>
      <p class="muted" id="status-message">${message}</p>
      <vscode-button secondary icon="close" id="cancel-run" @click=${() => api.postMessage({ type: 'action', action: 'cancel' })}>Cancel</vscode-button>
    </div>`;
  }

  private renderError(phase: Extract<Phase, { kind: 'error' }>) {
    const cancelled = phase.message === 'Cancelled.';
    return html`<div class="center" id="error-view">
      <span class="codicon ${cancelled ? 'codicon-circle-slash' : 'codicon-error'} big"></span>
      <p><strong>${phase.imageName}</strong></p>
      <p id="error-message" class=${cancelled ? '' : 'error-text'}>${phase.message}</p>
      <div class="actions">
        ${phase.actions.map((a) => html`<vscode-button ?secondary=${a !== phase.actions[0]} icon=${ACTION_LABELS[a][1]} data-action=${a} @click=${() => api.postMessage({ type: 'action', action: a })}>${ACTION_LABELS[a][0]}</vscode-button>`)}
      </div>
    </div>`;
  }
}

customElements.define('vi-inspector', InspectorApp);
