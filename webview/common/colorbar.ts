/** <vi-colorbar>: the colour map as a horizontal bar with the value range at its ends. */
import { LitElement, css, html } from 'lit';
import { colormapTable, formatValue, type ColormapName } from '../../src/shared/colormap.js';
import { fitCanvas } from './heatmap.js';

export class ColorBar extends LitElement {
  static override properties = {
    min: { type: Number },
    max: { type: Number },
    colormap: { type: String },
    label: { type: String },
  };

  static override styles = css`
    :host { display: block; font-size: 11px; color: var(--vscode-descriptionForeground); }
    canvas { display: block; width: 100%; height: 10px; border: 1px solid var(--vscode-widget-border, transparent); }
    .ends { display: flex; justify-content: space-between; margin-top: 2px; font-variant-numeric: tabular-nums; }
  `;

  declare min: number;
  declare max: number;
  declare colormap: ColormapName;
  declare label: string;

  constructor() {
    super();
    this.min = 0;
    this.max = 0;
    this.colormap = 'viridis';
    this.label = '';
  }

  override render() {
    return html`<canvas></canvas>
      <div class="ends"><span class="min">${formatValue(this.min)}</span><span>${this.label}</span><span class="max">${formatValue(this.max)}</span></div>`;
  }

  protected override updated(): void {
    const canvas = this.renderRoot.querySelector('canvas');
    if (!canvas) return;
    const width = Math.max(16, canvas.clientWidth || 200);
    const ctx = fitCanvas(canvas, width, 10);
    const table = colormapTable(this.colormap);
    const gradient = ctx.createLinearGradient(0, 0, width, 0);
    for (let i = 0; i <= 16; i++) {
      const level = Math.round((i / 16) * 255) * 4;
      gradient.addColorStop(i / 16, `rgb(${table[level]}, ${table[level + 1]}, ${table[level + 2]})`);
    }
    ctx.fillStyle = gradient;
    ctx.fillRect(0, 0, width, 10);
  }
}

customElements.define('vi-colorbar', ColorBar);

declare global {
  interface HTMLElementTagNameMap {
    'vi-colorbar': ColorBar;
  }
}
