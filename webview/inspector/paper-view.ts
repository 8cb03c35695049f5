/**
 * <vi-paper-view>: the ViT paper's Figure 7 for the loaded model — position-embedding similarity
 * as a grid of grids, on a grid size the user picks (the table resized as the model resizes it),
 * the first principal components of the patch-embedding filters, and mean attention distance on
 * this image and averaged over images the user chooses (on the host, with progress and Cancel).
 * The host draws the pictures with the report's figure helpers; this view only shows them.
 */
import { LitElement, html, nothing } from 'lit';
import { attentionDistanceCard, filterPcaCard, positionSimilarityCard } from '../../src/shared/method-cards.js';
import type { AttentionDistanceFigure, HostToInspectorMessage, ImageSetInfo, Inspection, InspectorToHostMessage, PaperFigures, RgbFigure } from '../../src/shared/protocol.js';
import { paperGridChoices, standaloneSvg, type GridSize } from '../../src/shared/view-helpers.js';
import { putRgb } from '../common/image-pixels.js';
import { renderMethodCard } from '../common/method-card.js';
import { vscodeApi } from '../common/vscode-api.js';
import type { HostRequest } from './host-request.js';

const api = vscodeApi<InspectorToHostMessage, unknown>();
export type DistanceMessage = Extract<HostToInspectorMessage, { type: 'distanceProgress' | 'distanceDone' | 'distanceFailed' }>;

const sizeKey = (g: GridSize): string => `${g.rows}x${g.cols}`;

export class PaperView extends LitElement {
  static override properties = {
    inspection: { attribute: false },
    request: { attribute: false },
    active: { type: Boolean },
    grid: { state: true },
    figures: { state: true },
    note: { state: true },
    setRun: { state: true },
    setResult: { state: true },
  };

  declare inspection: Inspection;
  declare request: HostRequest;
  declare active: boolean;
  /** The grid the similarities are shown on; undefined until the user picks one (then: this input's grid). */
  declare grid: GridSize | undefined;
  declare figures: { resultId: string; figures: PaperFigures } | undefined;
  declare note: string;
  /** The run over a chosen set in progress (or its last message). */
  declare setRun: { runId: number; set: ImageSetInfo; message: string; running: boolean } | undefined;
  /** The distance averaged over the chosen set, with its plot as a blob: URL. */
  declare setResult: { resultId: string; set: ImageSetInfo; distance: AttentionDistanceFigure; url: string } | undefined;
  private nextRunId = 1;

  /** resultId + grid of the last request, so each is asked once. */
  private requested = '';
  /** The distance plot as a blob: URL (an SVG in an <img> runs nothing), per result. */
  private plot: { resultId: string; url: string } | undefined;

  constructor() {
    super();
    this.active = false;
    this.grid = undefined;
    this.figures = undefined;
    this.note = '';
    this.setRun = undefined;
    this.setResult = undefined;
  }

  /** The host's answer to "Average over images…": start the run over that set. */
  onImageSet(set: ImageSetInfo): void {
    if (this.setRun?.running) api.postMessage({ type: 'cancelDistanceOverImages', runId: this.setRun.runId });
    const runId = this.nextRunId++;
    this.setRun = { runId, set, message: `0 of ${set.images.length} images`, running: true };
    api.postMessage({ type: 'startDistanceOverImages', runId, resultId: this.inspection.resultId, setId: set.setId });
  }

  onHostMessage(message: DistanceMessage): void {
    const run = this.setRun;
    if (!run || message.runId !== run.runId) return;
    switch (message.type) {
      case 'distanceProgress':
        this.setRun = { ...run, message: message.message };
        return;
      case 'distanceDone':
        if (this.setResult) URL.revokeObjectURL(this.setResult.url);
        this.setResult = {
          resultId: this.inspection.resultId,
          set: run.set,
          distance: message.distance,
          url: URL.createObjectURL(new Blob([standaloneSvg(message.distance.svg)], { type: 'image/svg+xml' })),
        };
        this.setRun = { ...run, message: '', running: false };
        return;
      case 'distanceFailed':
        this.setRun = { ...run, message: message.message, running: false };
        return;
    }
  }

  private renderSetDistance() {
    const run = this.setRun;
    const result = this.setResult?.resultId === this.inspection.resultId ? this.setResult : undefined;
    return html`<h3>Mean attention distance over chosen images <span class="muted">(Fig. 7 right, as the paper: averaged over images)</span></h3>
      <div class="row">
        <vscode-button id="distance-choose" icon="folder-opened" secondary ?disabled=${run?.running === true}
          @click=${() => api.postMessage({ type: 'chooseImages', resultId: this.inspection.resultId, purpose: 'attentionDistance' })}>Average over images…</vscode-button>
        ${run?.running ? html`<vscode-progress-ring></vscode-progress-ring><span id="distance-progress">${run.message}</span>
          <vscode-button id="distance-cancel" icon="close" secondary @click=${() => api.postMessage({ type: 'cancelDistanceOverImages', runId: run.runId })}>Cancel</vscode-button>` : nothing}
        ${run && !run.running && run.message ? html`<span class="note" id="distance-set-note">${run.message}</span>` : nothing}
      </div>
      ${result
        ? html`<div class="pair">
            <figure>
              <img id="attention-distance-set" class="plot-figure" alt="mean attention distance over the chosen images" src=${result.url} />
              <figcaption id="distance-set-caption">averaged over ${result.distance.images} images (${result.set.images.slice(0, 6).map((i) => i.name).join(', ')}${result.set.images.length > 6 ? ', …' : ''}); dots: heads, line: mean over heads. Largest possible distance: ${result.distance.maxDistance.toFixed(0)} px</figcaption>
            </figure>
            ${renderMethodCard(attentionDistanceCard(result.distance.patchSize, result.distance.images), 'distance-set-method')}
          </div>`
        : html`<p class="muted">Choose image files or folders (their images directly inside) to average over, as the paper does over 128 images.</p>`}`;
  }

  protected override createRenderRoot(): HTMLElement {
    return this;
  }

  protected override willUpdate(changed: Map<string, unknown>): void {
    if (changed.has('inspection') && this.figures && this.figures.resultId !== this.inspection.resultId) {
      this.grid = undefined;
      this.note = '';
      // A run for the previous result no longer belongs here.
      if (this.setRun?.running) api.postMessage({ type: 'cancelDistanceOverImages', runId: this.setRun.runId });
      this.setRun = undefined;
    }
  }

  protected override updated(): void {
    if (this.active && this.inspection) void this.load();
    this.draw();
  }

  private shownGrid(): GridSize {
    return this.grid ?? { rows: this.inspection.grid.rows, cols: this.inspection.grid.cols };
  }

  private async load(): Promise<void> {
    const resultId = this.inspection.resultId;
    const grid = this.shownGrid();
    const key = `${resultId}:${sizeKey(grid)}`;
    if (this.requested === key) return;
    this.requested = key;
    try {
      const m = await this.request({ type: 'requestPaperFigures', requestId: 0, resultId, rows: grid.rows, cols: grid.cols });
      if (m.type !== 'paperFigures' || m.resultId !== this.inspection.resultId || this.requested !== key) return;
      this.figures = { resultId, figures: m.figures };
      if (this.plot?.resultId !== resultId) {
        if (this.plot) URL.revokeObjectURL(this.plot.url);
        this.plot = { resultId, url: URL.createObjectURL(new Blob([standaloneSvg(m.figures.distance.svg)], { type: 'image/svg+xml' })) };
      }
      this.note = '';
    } catch (err) {
      this.note = (err as Error).message;
    }
  }

  private draw(): void {
    const current = this.figures?.resultId === this.inspection?.resultId ? this.figures?.figures : undefined;
    if (!current) return;
    const put = (id: string, figure: RgbFigure) => {
      const canvas = this.querySelector<HTMLCanvasElement>(id);
      if (!canvas) return;
      putRgb(canvas, { width: figure.width, height: figure.height, data: new Uint8Array(figure.data) });
      canvas.dataset.state = 'drawn';
    };
    put('#position-similarity', current.positions);
    put('#filter-components', current.components);
  }

  override render() {
    if (!this.inspection) return nothing;
    const current = this.figures?.resultId === this.inspection.resultId ? this.figures.figures : undefined;
    if (!current) return this.note ? html`<p class="note" id="paper-note">${this.note}</p>` : html`<p class="muted">Reading the position embeddings and filters…</p>`;
    const shown = this.shownGrid();
    const choices = paperGridChoices({ rows: current.trainedRows, cols: current.trainedCols }, this.inspection.grid);
    const explained = current.explainedRatio.reduce((a, b) => a + b, 0);
    return html`<div class="controls">
        <label>Position grid
          <select id="paper-grid-select" .value=${sizeKey(shown)} @change=${(e: Event) => {
            const [rows, cols] = (e.target as HTMLSelectElement).value.split('x').map(Number);
            this.grid = { rows: rows!, cols: cols! };
          }}>
            ${choices.map((c) => html`<option value=${sizeKey(c.size)} ?selected=${sizeKey(c.size) === sizeKey(shown)}>${c.label}</option>`)}
          </select>
        </label>
      </div>
      ${this.note ? html`<p class="note" id="paper-note">${this.note}</p>` : nothing}
      <h3>Position-embedding similarity <span class="muted">(Fig. 7 centre)</span></h3>
      <div class="pair">
        <figure>
          <canvas id="position-similarity" class="pixelated"></canvas>
          <figcaption id="position-caption">${current.rows}×${current.cols} grid${current.rows === current.trainedRows && current.cols === current.trainedCols ? ' (as trained)' : `, resized from the trained ${current.trainedRows}×${current.trainedCols}`}: tile (r, c) shows cos(e_(r,c), ·); −1 … 1 viridis</figcaption>
        </figure>
        ${renderMethodCard(positionSimilarityCard(), 'positions-method')}
      </div>
      <h3>Principal components of the patch-embedding filters <span class="muted">(Fig. 7 left)</span></h3>
      <div class="pair">
        <figure>
          <canvas id="filter-components" class="pixelated"></canvas>
          <figcaption id="components-caption">first ${current.componentCount} of ${current.filterCount} filters' components, explaining ${(100 * explained).toFixed(1)} % of their variance (first: ${(100 * (current.explainedRatio[0] ?? 0)).toFixed(1)} %)</figcaption>
        </figure>
        ${renderMethodCard(filterPcaCard(current.filterCount, current.filterDims), 'pca-method')}
      </div>
      <h3>Mean attention distance <span class="muted">(Fig. 7 right, this image)</span></h3>
      <div class="pair">
        <figure>
          ${this.plot?.resultId === this.inspection.resultId ? html`<img id="attention-distance" class="plot-figure" alt="mean attention distance per head and layer" src=${this.plot.url} />` : nothing}
          <figcaption id="distance-caption">${current.distance.layers} layers × ${current.distance.heads} heads on this image; dots: heads, line: mean over heads. Largest possible distance on this ${this.inspection.grid.rows}×${this.inspection.grid.cols} grid: ${current.distance.maxDistance.toFixed(0)} px</figcaption>
        </figure>
        ${renderMethodCard(attentionDistanceCard(current.distance.patchSize), 'distance-method')}
      </div>
      ${this.renderSetDistance()}`;
  }
}

customElements.define('vi-paper-view', PaperView);
