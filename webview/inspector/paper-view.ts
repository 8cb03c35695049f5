/**
 * <vi-paper-view>: the ViT paper's Figure 7 for the loaded model — position-embedding similarity
 * as a grid of grids, on a grid size the user picks (the table resized as the model resizes it),
 * and the first principal components of the patch-embedding filters. The host draws both
 * pictures with the HTML report's figure helpers; this view only puts them on canvases.
 */
import { LitElement, html, nothing } from 'lit';
import { attentionDistanceCard, filterPcaCard, positionSimilarityCard } from '../../src/shared/method-cards.js';
import type { Inspection, PaperFigures, RgbFigure } from '../../src/shared/protocol.js';
import { paperGridChoices, standaloneSvg, type GridSize } from '../../src/shared/view-helpers.js';
import { putRgb } from '../common/image-pixels.js';
import { renderMethodCard } from '../common/method-card.js';
import type { HostRequest } from './host-request.js';

const sizeKey = (g: GridSize): string => `${g.rows}x${g.cols}`;

export class PaperView extends LitElement {
  static override properties = {
    inspection: { attribute: false },
    request: { attribute: false },
    active: { type: Boolean },
    grid: { state: true },
    figures: { state: true },
    note: { state: true },
  };

  declare inspection: Inspection;
  declare request: HostRequest;
  declare active: boolean;
  /** The grid the similarities are shown on; undefined until the user picks one (then: this input's grid). */
  declare grid: GridSize | undefined;
  declare figures: { resultId: string; figures: PaperFigures } | undefined;
  declare note: string;

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
  }

  protected override createRenderRoot(): HTMLElement {
    return this;
  }

  protected override willUpdate(changed: Map<string, unknown>): void {
    if (changed.has('inspection') && this.figures && this.figures.resultId !== this.inspection.resultId) {
      this.grid = undefined;
      this.note = '';
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
      </div>`;
  }
}

customElements.define('vi-paper-view', PaperView);
