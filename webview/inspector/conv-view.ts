/**
 * <vi-conv-view>: the convolution explorer. Classic kernels (src/core/image/kernels.ts, plain
 * TS) run here on a scaled-down copy of the image; the model's learned patch-embedding filters
 * and their response maps come from the host (they need the weights).
 */
import { LitElement, html, nothing, type PropertyValues } from 'lit';
import {
  applyKernel,
  BORDER_MODES,
  CLASSIC_FILTERS,
  classicKernel,
  CUSTOM_KERNEL_SIZES,
  customKernel,
  displayMappingFor,
  flipKernel,
  gradientMagnitude,
  toDisplayRgb,
  toFloatImage,
  type BorderMode,
  type ClassicFilterId,
  type FloatImage,
  type Kernel,
  type KernelOperation,
} from '../../src/core/image/kernels.js';
import type { RgbImage } from '../../src/core/image/types.js';
import { colormapTable, valueRange } from '../../src/shared/colormap.js';
import { convolutionCard, learnedFiltersCard } from '../../src/shared/method-cards.js';
import { gridRect } from '../../src/shared/patch-geometry.js';
import type { Inspection, PatchFilterSet } from '../../src/shared/protocol.js';
import { resizeKernelValues, scaleBox } from '../../src/shared/view-helpers.js';
import { fitCanvas, fitSize, PatchImage, sizeStages } from '../common/heatmap.js';
import { loadRgb, putRgb } from '../common/image-pixels.js';
import { renderMethodCard } from '../common/method-card.js';
import type { HostRequest } from './host-request.js';

/** Longer side the explorer works at: a 7×7 stack on RGB stays well under 100 ms. */
const WORK_SIDE = 320;
const FILTER_NAMES: Record<ClassicFilterId | 'custom', string> = {
  identity: 'Identity',
  box: 'Box blur 3×3',
  gaussian: 'Gaussian blur σ=1',
  sharpen: 'Sharpen',
  'sobel-x': 'Sobel x',
  'sobel-y': 'Sobel y',
  'gradient-magnitude': 'Gradient magnitude',
  laplacian: 'Laplacian',
  emboss: 'Emboss',
  custom: 'Custom…',
};
type FilterChoice = ClassicFilterId | 'custom';

/** The properties the convolution output is computed from ('active': the canvases exist from then on). */
const COMPUTED_FROM = ['active', 'inspection', 'imageUrl', 'filter', 'second', 'operation', 'border', 'channels', 'custom'] as const;

export class ConvView extends LitElement {
  static override properties = {
    inspection: { attribute: false },
    imageUrl: { attribute: false },
    request: { attribute: false },
    active: { type: Boolean },
    filter: { state: true },
    second: { state: true },
    operation: { state: true },
    border: { state: true },
    channels: { state: true },
    custom: { state: true },
    learned: { state: true },
    channel: { state: true },
    note: { state: true },
  };

  declare inspection: Inspection;
  declare imageUrl: string;
  declare request: HostRequest;
  declare active: boolean;
  declare filter: FilterChoice;
  declare second: FilterChoice | 'none';
  declare operation: KernelOperation;
  declare border: BorderMode;
  declare channels: 'rgb' | 'luminance';
  declare custom: number[];
  declare learned: { resultId: string; set: PatchFilterSet; responses: Float32Array; tiles: Uint8Array } | undefined;
  /** Output channel whose response map is shown. */
  declare channel: number;
  declare note: string;

  private source: { url: string; image: RgbImage; float: Record<'rgb' | 'luminance', FloatImage> } | undefined;
  private learnedRequested = '';

  constructor() {
    super();
    this.active = false;
    this.filter = 'sobel-x';
    this.second = 'none';
    this.operation = 'convolution';
    this.border = 'reflect';
    this.channels = 'luminance';
    this.custom = [0, -1, 0, -1, 5, -1, 0, -1, 0];
    this.learned = undefined;
    this.channel = -1;
    this.note = '';
  }

  protected override createRenderRoot(): HTMLElement {
    return this;
  }

  private kernelOf(choice: FilterChoice): Kernel | undefined {
    return choice === 'custom' ? customKernel(this.custom) : classicKernel(choice);
  }

  private apply(image: FloatImage, choice: FilterChoice): FloatImage {
    const options = { operation: this.operation, border: this.border };
    const kernel = this.kernelOf(choice);
    return kernel ? applyKernel(image, kernel, options) : gradientMagnitude(image, options);
  }

  /** How the output is shown: follows the last kernel applied (a zero-sum kernel gives signed values). */
  private mapping() {
    return displayMappingFor(this.kernelOf(this.second !== 'none' ? this.second : this.filter));
  }

  private async ensureSource(): Promise<void> {
    if (this.source?.url === this.imageUrl) return;
    const image = await loadRgb(this.imageUrl, WORK_SIDE);
    this.source = { url: this.imageUrl, image, float: { rgb: toFloatImage(image, 'rgb'), luminance: toFloatImage(image, 'luminance') } };
  }

  private async compute(): Promise<void> {
    const out = this.querySelector<HTMLCanvasElement>('#conv-output');
    const input = this.querySelector<HTMLCanvasElement>('#conv-input');
    if (!out || !input) return;
    try {
      await this.ensureSource();
      const source = this.source!;
      putRgb(input, source.image);
      const t0 = performance.now();
      let result = this.apply(source.float[this.channels], this.filter);
      if (this.second !== 'none') result = this.apply(result, this.second);
      putRgb(out, toDisplayRgb(result, this.mapping()));
      out.dataset.state = 'drawn';
      out.dataset.ms = (performance.now() - t0).toFixed(1);
    } catch (err) {
      this.note = (err as Error).message;
    }
  }

  private async loadLearned(): Promise<void> {
    const resultId = this.inspection.resultId;
    if (this.learnedRequested === resultId) return;
    this.learnedRequested = resultId;
    try {
      const m = await this.request({ type: 'requestPatchFilters', requestId: 0, resultId });
      if (m.type !== 'patchFilters' || m.resultId !== this.inspection.resultId) return;
      this.learned = { resultId, set: m.filters, responses: new Float32Array(m.filters.responses), tiles: new Uint8Array(m.filters.tiles) };
      this.channel = m.filters.ranking[0]?.channel ?? 0;
    } catch (err) {
      this.note = `Learned filters: ${(err as Error).message}`;
    }
  }

  private drawLearned(): void {
    const learned = this.learned;
    if (!learned || learned.resultId !== this.inspection.resultId) return;
    const { set } = learned;
    const p = set.patchSize;
    // Tiles sorted by energy, at most 64, each p×p scaled up to a readable size.
    const tilesCanvas = this.querySelector<HTMLCanvasElement>('#filter-tiles');
    if (tilesCanvas) {
      const shown = set.ranking.slice(0, 64);
      const perRow = 8;
      const cell = 28;
      const ctx = fitCanvas(tilesCanvas, perRow * cell, Math.ceil(shown.length / perRow) * cell);
      ctx.imageSmoothingEnabled = false;
      const tile = document.createElement('canvas');
      shown.forEach(({ channel }, i) => {
        const size = p * p * 3;
        putRgb(tile, { width: p, height: p, data: learned.tiles.subarray(channel * size, (channel + 1) * size) });
        const x = (i % perRow) * cell;
        const y = Math.floor(i / perRow) * cell;
        ctx.drawImage(tile, x + 1, y + 1, cell - 2, cell - 2);
        if (channel === this.channel) {
          ctx.strokeStyle = getComputedStyle(this).getPropertyValue('--vscode-focusBorder').trim() || '#0078d4';
          ctx.lineWidth = 2;
          ctx.strokeRect(x + 1, y + 1, cell - 2, cell - 2);
        }
      });
    }
    const map = this.querySelector<HTMLCanvasElement>('#filter-response');
    if (map && this.channel >= 0) {
      const { width, height, scale } = fitSize(this.inspection.image.width, this.inspection.image.height, 320, 260);
      const ctx = fitCanvas(map, width, height);
      ctx.clearRect(0, 0, width, height);
      const cells = set.rows * set.cols;
      const values = learned.responses.subarray(this.channel * cells, (this.channel + 1) * cells);
      const patches = new PatchImage(set.rows, set.cols);
      patches.paint(values, 0, valueRange(values), colormapTable('viridis'));
      const area = gridRect(this.inspection.placement, { ...this.inspection.grid, rows: set.rows, cols: set.cols });
      patches.drawOnto(ctx, scaleBox(area, scale), false, 0.85);
      map.dataset.state = 'drawn';
    }
  }

  private onTileClick = (event: MouseEvent): void => {
    const learned = this.learned;
    if (!learned) return;
    const rect = (event.currentTarget as HTMLElement).getBoundingClientRect();
    const index = Math.floor((event.clientY - rect.top) / 28) * 8 + Math.floor((event.clientX - rect.left) / 28);
    const entry = learned.set.ranking[index];
    if (entry && index < 64) this.channel = entry.channel;
  };

  protected override updated(changed: PropertyValues): void {
    sizeStages(this);
    if (!this.active) return;
    // The convolution runs again only when its input or settings change (or the tab's canvases
    // were just created), not when a learned filter is browsed or a note set.
    if (COMPUTED_FROM.some((p) => changed.has(p))) void this.compute();
    void this.loadLearned();
    this.drawLearned();
  }

  private renderKernelTable(choice: FilterChoice) {
    const kernel = this.kernelOf(choice);
    if (!kernel) return html`<p class="muted">√(Gx² + Gy²) of the Sobel x and y responses (the same either way of the toggle).</p>`;
    const shown = this.operation === 'convolution' ? flipKernel(kernel) : kernel;
    const size = shown.size;
    return html`<p class="muted">${this.operation === 'convolution' ? 'Flipped kernel as laid on the image' : 'Kernel as laid on the image'}:</p>
      <table class="kernel">${Array.from({ length: size }, (_, v) => html`<tr>${Array.from({ length: size }, (_, u) => {
        const w = shown.weights[v * size + u]!;
        return html`<td>${Number.isInteger(w) ? w : w.toFixed(3)}</td>`;
      })}</tr>`)}</table>`;
  }

  private renderCustomEditor() {
    const size = Math.round(Math.sqrt(this.custom.length));
    return html`<div class="row">
        <label>Size
          <select id="custom-size" .value=${String(size)} @change=${(e: Event) => (this.custom = resizeKernelValues(this.custom, Number((e.target as HTMLSelectElement).value)))}>
            ${CUSTOM_KERNEL_SIZES.map((s) => html`<option value=${String(s)} ?selected=${s === size}>${s}×${s}</option>`)}
          </select>
        </label>
      </div>
      <table class="kernel editable" id="custom-kernel">${Array.from({ length: size }, (_, v) => html`<tr>${Array.from({ length: size }, (_, u) => html`<td><input type="number" step="any" .value=${String(this.custom[v * size + u])}
        @change=${(e: Event) => {
          const value = Number((e.target as HTMLInputElement).value);
          if (!Number.isFinite(value)) return;
          const next = [...this.custom];
          next[v * size + u] = value;
          this.custom = next;
        }} /></td>`)}</tr>`)}</table>`;
  }

  override render() {
    if (!this.active) return nothing;
    const { width, height } = fitSize(this.inspection.image.width, this.inspection.image.height, 360, 300);
    const options = (id: string, value: string, includeNone: boolean, onChange: (v: string) => void) => html`<select id=${id} .value=${value} @change=${(e: Event) => onChange((e.target as HTMLSelectElement).value)}>
      ${includeNone ? html`<option value="none" ?selected=${value === 'none'}>(none)</option>` : nothing}
      ${[...CLASSIC_FILTERS, 'custom' as const].map((f) => html`<option value=${f} ?selected=${f === value}>${FILTER_NAMES[f]}</option>`)}
    </select>`;
    const kernelName = (c: FilterChoice) => this.kernelOf(c)?.name ?? 'gradient magnitude';
    const learned = this.learned?.resultId === this.inspection.resultId ? this.learned : undefined;
    return html`<div class="controls">
        <label>Kernel ${options('kernel-select', this.filter, false, (v) => (this.filter = v as FilterChoice))}</label>
        <label>Then (stack) ${options('kernel2-select', this.second, true, (v) => (this.second = v as FilterChoice | 'none'))}</label>
        <label>Channels
          <select id="channels-select" .value=${this.channels} @change=${(e: Event) => (this.channels = (e.target as HTMLSelectElement).value as 'rgb' | 'luminance')}>
            <option value="luminance" ?selected=${this.channels === 'luminance'}>Luminance</option>
            <option value="rgb" ?selected=${this.channels === 'rgb'}>Per RGB channel</option>
          </select>
        </label>
        <label>Border
          <select id="border-select" .value=${this.border} @change=${(e: Event) => (this.border = (e.target as HTMLSelectElement).value as BorderMode)}>
            ${BORDER_MODES.map((b) => html`<option value=${b} ?selected=${b === this.border}>${b}</option>`)}
          </select>
        </label>
        <vscode-checkbox id="correlation-toggle" .checked=${this.operation === 'correlation'}
          @change=${(e: Event) => (this.operation = (e.target as HTMLInputElement).checked ? 'correlation' : 'convolution')}>Cross-correlation (no flip)</vscode-checkbox>
      </div>
      <div class="tab-layout">
        <section>
          <div class="pair">
            <figure><div class="stage" data-width=${width} data-height=${height}><canvas id="conv-input" class="pixelated"></canvas></div><figcaption>Input</figcaption></figure>
            <figure><div class="stage" data-width=${width} data-height=${height}><canvas id="conv-output" class="pixelated"></canvas></div>
              <figcaption id="conv-caption">${kernelName(this.filter)}${this.second !== 'none' ? ` → ${kernelName(this.second)}` : ''} · ${this.operation} · border ${this.border}</figcaption></figure>
          </div>
          ${renderMethodCard(convolutionCard({ kernelName: kernelName(this.filter), operation: this.operation, border: this.border, channels: this.channels, stacked: this.second !== 'none' ? kernelName(this.second) : undefined, mapping: this.mapping(), width: this.source?.image.width ?? 0, height: this.source?.image.height ?? 0 }), 'conv-method')}
        </section>
        <aside class="side">
          <h3>Kernel</h3>
          ${this.filter === 'custom' ? this.renderCustomEditor() : nothing}
          ${this.renderKernelTable(this.filter)}
          ${this.second !== 'none' ? html`<h3>Then</h3>${this.second === 'custom' && this.filter !== 'custom' ? this.renderCustomEditor() : nothing}${this.renderKernelTable(this.second)}` : nothing}
          ${this.note ? html`<p class="note">${this.note}</p>` : nothing}
        </aside>
      </div>
      <h3>Learned filters of ${this.inspection.model.name} <span class="muted">(patch embedding, sorted by response energy; click a tile)</span></h3>
      ${learned
        ? html`<div class="pair">
              <canvas id="filter-tiles" @click=${this.onTileClick}></canvas>
              <figure><div class="stage" data-width=${fitSize(this.inspection.image.width, this.inspection.image.height, 320, 260).width} data-height=${fitSize(this.inspection.image.width, this.inspection.image.height, 320, 260).height}>
                <img alt="" src=${this.imageUrl} /><canvas id="filter-response"></canvas></div>
                <figcaption id="filter-caption">channel ${this.channel} · energy ${learned.set.ranking.find((r) => r.channel === this.channel)?.energy.toFixed(3) ?? '?'} · rank ${learned.set.ranking.findIndex((r) => r.channel === this.channel) + 1} of ${learned.set.count}</figcaption>
                <div class="row">
                  <vscode-button secondary icon="arrow-left" id="filter-prev" @click=${() => this.stepChannel(-1)}>Previous</vscode-button>
                  <vscode-button secondary icon="arrow-right" id="filter-next" @click=${() => this.stepChannel(1)}>Next</vscode-button>
                </div>
              </figure>
            </div>
            ${renderMethodCard(learnedFiltersCard(learned.set.patchSize, learned.set.tensor, learned.set.hasBias), 'filters-method')}`
        : html`<p class="muted">Loading the filters…</p>`}`;
  }

  /** Moves through the channels in energy order. */
  private stepChannel(delta: number): void {
    const ranking = this.learned?.set.ranking;
    if (!ranking) return;
    const at = ranking.findIndex((r) => r.channel === this.channel);
    this.channel = ranking[Math.min(ranking.length - 1, Math.max(0, at + delta))]!.channel;
  }
}

customElements.define('vi-conv-view', ConvView);
