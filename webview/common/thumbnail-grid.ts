/**
 * <vi-thumbnail-grid>: every layer (rows) × the mean and every head (columns) as a small map of
 * one token's attention, each normalised on its own. One canvas for all tiles: 24 × 17 tiles of
 * ViT-L redraw in a few milliseconds, where hundreds of canvases would not.
 */
import { LitElement, css, html } from 'lit';
import { colormapTable, valueRange, type ColormapName } from '../../src/shared/colormap.js';
import { hitTestTile, type TileLayout, type TokenGrid } from '../../src/shared/patch-geometry.js';
import { tokenRow } from '../../src/shared/attention-rows.js';
import { fitCanvas, PatchImage } from './heatmap.js';

export interface TileSelectDetail {
  layer: number;
  head: number | 'mean';
}

const LABEL_WIDTH = 30;
const HEADER_HEIGHT = 16;
const GAP = 2;

export class ThumbnailGrid extends LitElement {
  static override properties = {
    rows: { attribute: false },
    grid: { attribute: false },
    layers: { type: Number },
    heads: { type: Number },
    layer: { type: Number },
    head: { attribute: false },
    colormap: { type: String },
    maxTile: { type: Number, attribute: 'max-tile' },
  };

  static override styles = css`
    :host { display: block; position: relative; }
    canvas { display: block; cursor: pointer; }
    .tip { position: absolute; pointer-events: none; padding: 1px 4px; font-size: 11px; white-space: nowrap;
      background: var(--vscode-editorHoverWidget-background); color: var(--vscode-editorHoverWidget-foreground);
      border: 1px solid var(--vscode-editorHoverWidget-border); display: none; }
  `;

  /** [layers, heads, tokens]: one token's attention rows. */
  declare rows: Float32Array | undefined;
  declare grid: TokenGrid | undefined;
  declare layers: number;
  declare heads: number;
  declare layer: number;
  declare head: number | 'mean';
  declare colormap: ColormapName;
  declare maxTile: number;

  private layout: TileLayout | undefined;
  private readonly resize = new ResizeObserver(() => this.requestUpdate());
  private patchImage: PatchImage | undefined;
  private row = new Float32Array(0);

  constructor() {
    super();
    this.layers = 0;
    this.heads = 0;
    this.layer = 0;
    this.head = 'mean';
    this.colormap = 'viridis';
    this.maxTile = 48;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    this.resize.observe(this);
  }

  override disconnectedCallback(): void {
    this.resize.disconnect();
    super.disconnectedCallback();
  }

  override render() {
    return html`<canvas
        part="canvas"
        role="grid"
        aria-label="Attention of every layer and head"
        @click=${this.onClick}
        @mousemove=${this.onMove}
        @mouseleave=${this.onLeave}
      ></canvas
      ><div class="tip"></div>`;
  }

  protected override updated(): void {
    this.draw();
  }

  private draw(): void {
    const canvas = this.renderRoot.querySelector('canvas');
    const { rows, grid, layers, heads } = this;
    if (!canvas || !rows || !grid || layers === 0 || heads === 0) return;
    const columns = heads + 1;
    const available = Math.max(0, this.clientWidth - LABEL_WIDTH);
    const aspect = grid.rows / grid.cols;
    const tileWidth = Math.max(8, Math.min(this.maxTile, Math.floor(available / columns) - GAP));
    const tileHeight = Math.max(6, Math.round(tileWidth * aspect));
    const layout: TileLayout = { columns, rows: layers, tileWidth, tileHeight, gap: GAP, offsetX: LABEL_WIDTH, offsetY: HEADER_HEIGHT };
    this.layout = layout;
    const width = LABEL_WIDTH + columns * (tileWidth + GAP);
    const height = HEADER_HEIGHT + layers * (tileHeight + GAP);
    const ctx = fitCanvas(canvas, width, height);
    const style = getComputedStyle(this);
    ctx.clearRect(0, 0, width, height);
    ctx.fillStyle = style.getPropertyValue('--vscode-descriptionForeground') || '#999';
    ctx.font = `10px ${style.getPropertyValue('--vscode-font-family') || 'sans-serif'}`;
    ctx.textBaseline = 'middle';
    ctx.textAlign = 'center';
    for (let c = 0; c < columns; c++) {
      const label = c === 0 ? (tileWidth >= 26 ? 'mean' : 'μ') : String(c - 1);
      if (c === 0 || tileWidth >= 14 || (c - 1) % 4 === 0) ctx.fillText(label, LABEL_WIDTH + c * (tileWidth + GAP) + tileWidth / 2, HEADER_HEIGHT / 2);
    }
    ctx.textAlign = 'right';
    for (let l = 0; l < layers; l++) ctx.fillText(`L${l}`, LABEL_WIDTH - 4, HEADER_HEIGHT + l * (tileHeight + GAP) + tileHeight / 2);

    if (!this.patchImage || this.patchImage.rows !== grid.rows || this.patchImage.cols !== grid.cols) this.patchImage = new PatchImage(grid.rows, grid.cols);
    if (this.row.length !== grid.tokens) this.row = new Float32Array(grid.tokens);
    const table = colormapTable(this.colormap);
    for (let l = 0; l < layers; l++) {
      for (let c = 0; c < columns; c++) {
        const head = c === 0 ? 'mean' : c - 1;
        tokenRow(rows, heads, grid.tokens, l, head, this.row);
        this.patchImage.paint(this.row, grid.prefixTokens, valueRange(this.row, grid.prefixTokens), table);
        this.patchImage.drawOnto(ctx, { x: LABEL_WIDTH + c * (tileWidth + GAP), y: HEADER_HEIGHT + l * (tileHeight + GAP), width: tileWidth, height: tileHeight }, false);
      }
    }
    // The selected tile.
    const selectedColumn = this.head === 'mean' ? 0 : this.head + 1;
    ctx.strokeStyle = style.getPropertyValue('--vscode-focusBorder') || '#0078d4';
    ctx.lineWidth = 2;
    ctx.strokeRect(LABEL_WIDTH + selectedColumn * (tileWidth + GAP) - 1, HEADER_HEIGHT + this.layer * (tileHeight + GAP) - 1, tileWidth + 2, tileHeight + 2);
  }

  private tileAt(event: MouseEvent): TileSelectDetail | undefined {
    if (!this.layout) return undefined;
    const rect = (event.currentTarget as HTMLCanvasElement).getBoundingClientRect();
    const hit = hitTestTile(this.layout, event.clientX - rect.left, event.clientY - rect.top);
    return hit ? { layer: hit.row, head: hit.column === 0 ? 'mean' : hit.column - 1 } : undefined;
  }

  private onClick = (event: MouseEvent): void => {
    const tile = this.tileAt(event);
    if (tile) this.dispatchEvent(new CustomEvent<TileSelectDetail>('tile-select', { detail: tile, bubbles: true, composed: true }));
  };

  private onMove = (event: MouseEvent): void => {
    const tip = this.renderRoot.querySelector<HTMLDivElement>('.tip');
    const tile = this.tileAt(event);
    if (!tip) return;
    if (!tile) {
      tip.style.display = 'none';
      return;
    }
    tip.textContent = `layer ${tile.layer} · ${tile.head === 'mean' ? 'mean of heads' : `head ${tile.head}`}`;
    tip.style.display = 'block';
    tip.style.left = `${event.offsetX + 12}px`;
    tip.style.top = `${event.offsetY + 12}px`;
  };

  private onLeave = (): void => {
    const tip = this.renderRoot.querySelector<HTMLDivElement>('.tip');
    if (tip) tip.style.display = 'none';
  };
}

customElements.define('vi-thumbnail-grid', ThumbnailGrid);

declare global {
  interface HTMLElementTagNameMap {
    'vi-thumbnail-grid': ThumbnailGrid;
  }
}
