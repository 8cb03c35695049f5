/**
 * <vi-clip-view>: CLIP zero-shot labels (an editable list and a prompt template → probability
 * bars), a phrase → heatmap over the patch grid, the image × text similarity matrix against
 * images the user adds (chosen on the host; they arrive as names and thumbnails), and the text
 * tower's attention on one label. All are computed on the host and arrive as numbers.
 */
import { LitElement, html, nothing } from 'lit';
import { clipCard } from '../../src/shared/method-cards.js';
import { clipMatrixCard, clipTextAttentionCard } from '../../src/shared/method-cards.js';
import { layerRow } from '../../src/shared/attention-rows.js';
import { cellColors, colormapTable, valueRange, formatValue } from '../../src/shared/colormap.js';
import { gridRect } from '../../src/shared/patch-geometry.js';
import type { ClipMatrixData, CLIPInspection, ImageSetInfo, InspectorToHostMessage, TextAttentionData, ZeroShotScore } from '../../src/shared/protocol.js';
import { displayToken, parseLabels, scaleBox } from '../../src/shared/view-helpers.js';
import { fitCanvas, fitSize, PatchImage, sizeStages } from '../common/heatmap.js';
import { putRgb } from '../common/image-pixels.js';
import { renderMethodCard } from '../common/method-card.js';
import { vscodeApi } from '../common/vscode-api.js';
import type { HostRequest } from './host-request.js';

const api = vscodeApi<InspectorToHostMessage, unknown>();
/** Largest side of the token × token matrix, and the room its token labels take. */
const TEXT_MATRIX_SIDE = 320;
const TEXT_LABEL_ROOM = 90;

const DEFAULT_LABELS = 'a cat\na dog\na cup of coffee\na rocket\na person';
const DEFAULT_TEMPLATE = 'a photo of {}.';

export class ClipView extends LitElement {
  static override properties = {
    inspection: { attribute: false },
    imageUrl: { attribute: false },
    request: { attribute: false },
    scores: { state: true },
    busy: { state: true },
    error: { state: true },
    phraseInfo: { state: true },
    matrixSet: { state: true },
    matrix: { state: true },
    showProbabilities: { state: true },
    textAttention: { state: true },
    textLayer: { state: true },
    textHead: { state: true },
  };

  declare inspection: CLIPInspection;
  declare imageUrl: string;
  declare request: HostRequest;
  declare scores: ZeroShotScore[];
  declare busy: '' | 'labels' | 'phrase' | 'matrix' | 'text-attention';
  declare error: string;
  declare phraseInfo: string;
  /** The images added for the matrix (rows after the inspected image). */
  declare matrixSet: ImageSetInfo | undefined;
  declare matrix: { resultId: string; data: ClipMatrixData } | undefined;
  declare showProbabilities: boolean;
  declare textAttention: { resultId: string; data: TextAttentionData; values: Float32Array } | undefined;
  declare textLayer: number;
  declare textHead: number | 'mean';
  private attentionText = '';

  private labelsText = DEFAULT_LABELS;
  private template = DEFAULT_TEMPLATE;
  private phrase = 'a cat';
  private similarity: { resultId: string; values: Float32Array } | undefined;

  constructor() {
    super();
    this.scores = [];
    this.busy = '';
    this.error = '';
    this.phraseInfo = '';
    this.matrixSet = undefined;
    this.matrix = undefined;
    this.showProbabilities = false;
    this.textAttention = undefined;
    this.textLayer = 0;
    this.textHead = 'mean';
  }

  /** The host's answer to "Compare with images…": the matrix is asked for with the current labels. */
  onImageSet(set: ImageSetInfo): void {
    this.matrixSet = set;
    void this.loadMatrix();
  }

  private async loadMatrix(): Promise<void> {
    const set = this.matrixSet;
    const labels = parseLabels(this.labelsText);
    if (!set || labels.length === 0 || !this.template.includes('{}')) return;
    this.busy = 'matrix';
    this.error = '';
    try {
      const resultId = this.inspection.resultId;
      const m = await this.request({ type: 'requestClipMatrix', requestId: 0, resultId, setId: set.setId, labels, template: this.template });
      if (m.type === 'clipMatrix' && m.resultId === this.inspection.resultId) this.matrix = { resultId, data: m.matrix };
    } catch (err) {
      this.error = (err as Error).message;
    } finally {
      this.busy = '';
    }
  }

  private async showTextAttention(): Promise<void> {
    const labels = parseLabels(this.labelsText);
    const text = labels.includes(this.attentionText) ? this.attentionText : labels[0];
    if (!text || !this.template.includes('{}')) {
      this.error = text ? 'The template needs {} where the label goes.' : 'Give at least one label.';
      return;
    }
    this.attentionText = text;
    this.busy = 'text-attention';
    this.error = '';
    try {
      const resultId = this.inspection.resultId;
      const m = await this.request({ type: 'requestTextAttention', requestId: 0, resultId, text, template: this.template });
      if (m.type === 'textAttention' && m.resultId === this.inspection.resultId) {
        this.textLayer = Math.min(this.textLayer, m.attention.layers - 1);
        this.textHead = this.textHead === 'mean' || this.textHead < m.attention.heads ? this.textHead : 'mean';
        this.textAttention = { resultId, data: m.attention, values: new Float32Array(m.attention.attentions) };
      }
    } catch (err) {
      this.error = (err as Error).message;
    } finally {
      this.busy = '';
    }
  }

  /** The shown layer and head's [T, T] attention (the mean over heads when asked). */
  private textMatrix(): Float32Array | undefined {
    const a = this.textAttention;
    if (!a || a.resultId !== this.inspection.resultId) return undefined;
    const T = a.data.tokens.length;
    const H = a.data.heads;
    // [layers, heads, T, T] → this layer's [heads, T, T].
    const layer = a.values.subarray(this.textLayer * H * T * T, (this.textLayer + 1) * H * T * T);
    const out = new Float32Array(T * T);
    for (let q = 0; q < T; q++) layerRow(layer, H, T, this.textHead, q, out.subarray(q * T, (q + 1) * T));
    return out;
  }

  private drawTextMatrix(values: Float32Array | undefined): void {
    const canvas = this.querySelector<HTMLCanvasElement>('#clip-text-matrix');
    const a = this.textAttention?.data;
    if (!canvas || !a || !values) return;
    const T = a.tokens.length;
    const cell = Math.max(4, Math.floor(TEXT_MATRIX_SIDE / T));
    const size = TEXT_LABEL_ROOM + cell * T;
    const ctx = fitCanvas(canvas, size, size);
    ctx.clearRect(0, 0, size, size);
    const patches = new PatchImage(T, T);
    patches.paint(values, 0, { min: 0, max: valueRange(values).max }, colormapTable('inferno'));
    patches.drawOnto(ctx, { x: TEXT_LABEL_ROOM, y: TEXT_LABEL_ROOM, width: cell * T, height: cell * T }, false);
    // Token labels: queries down the left, keys along the top (turned), the pooled token in bold.
    const style = getComputedStyle(this);
    ctx.fillStyle = style.color || '#888';
    const font = `${Math.min(12, cell)}px ${style.fontFamily || 'sans-serif'}`;
    a.tokens.forEach((t, i) => {
      const label = displayToken(t).slice(0, 14);
      ctx.font = i === a.pooledAt ? `bold ${font}` : font;
      ctx.textAlign = 'right';
      ctx.textBaseline = 'middle';
      ctx.fillText(label, TEXT_LABEL_ROOM - 4, TEXT_LABEL_ROOM + (i + 0.5) * cell);
      ctx.save();
      ctx.translate(TEXT_LABEL_ROOM + (i + 0.5) * cell, TEXT_LABEL_ROOM - 4);
      ctx.rotate(-Math.PI / 2);
      ctx.textAlign = 'left';
      ctx.fillText(label, 0, 0);
      ctx.restore();
    });
    canvas.dataset.state = 'drawn';
  }

  /** Thumbnails and cell colours of the matrix (the webview's CSP allows styles only through the CSSOM). */
  private paintMatrix(): void {
    const set = this.matrixSet;
    for (const canvas of this.querySelectorAll<HTMLCanvasElement>('#clip-matrix canvas[data-row]')) {
      const image = set?.images[Number(canvas.dataset.row) - 1];
      if (image) putRgb(canvas, { width: image.thumbnail.width, height: image.thumbnail.height, data: new Uint8Array(image.thumbnail.data) });
    }
    const cells = [...this.querySelectorAll<HTMLElement>('#clip-matrix td[data-value]')];
    const range = valueRange(cells.map((c) => Number(c.dataset.value)));
    for (const cell of cells) {
      const colors = cellColors(Number(cell.dataset.value), range, 'viridis');
      cell.style.background = colors.background;
      cell.style.color = colors.text;
    }
  }

  protected override createRenderRoot(): HTMLElement {
    return this;
  }

  private async classify(): Promise<void> {
    const labels = parseLabels(this.labelsText);
    if (labels.length === 0) {
      this.error = 'Give at least one label.';
      return;
    }
    if (!this.template.includes('{}')) {
      this.error = 'The template needs {} where the label goes.';
      return;
    }
    this.busy = 'labels';
    this.error = '';
    try {
      const m = await this.request({ type: 'requestZeroShot', requestId: 0, resultId: this.inspection.resultId, labels, template: this.template });
      if (m.type === 'zeroShot' && m.resultId === this.inspection.resultId) this.scores = m.scores;
    } catch (err) {
      this.error = (err as Error).message;
    } finally {
      this.busy = '';
    }
    // The matrix's columns are the labels: keep it in step with the list.
    if (this.matrixSet) await this.loadMatrix();
  }

  private async showPhrase(): Promise<void> {
    const phrase = this.phrase.trim();
    if (!phrase || !this.template.includes('{}')) {
      this.error = phrase ? 'The template needs {} where the phrase goes.' : 'Type a phrase.';
      return;
    }
    this.busy = 'phrase';
    this.error = '';
    try {
      const m = await this.request({ type: 'requestTextHeatmap', requestId: 0, resultId: this.inspection.resultId, phrase, template: this.template });
      if (m.type === 'textHeatmap' && m.resultId === this.inspection.resultId) {
        this.similarity = { resultId: m.resultId, values: new Float32Array(m.similarity) };
        const range = valueRange(this.similarity.values);
        this.phraseInfo = `"${m.phrase}": cos from ${formatValue(range.min)} to ${formatValue(range.max)}`;
        this.draw();
      }
    } catch (err) {
      this.error = (err as Error).message;
    } finally {
      this.busy = '';
    }
  }

  private stageSize() {
    return fitSize(this.inspection.image.width, this.inspection.image.height, 520, 420);
  }

  private draw(): void {
    const canvas = this.querySelector<HTMLCanvasElement>('#clip-heatmap');
    if (!canvas) return;
    const { width, height, scale } = this.stageSize();
    const ctx = fitCanvas(canvas, width, height);
    ctx.clearRect(0, 0, width, height);
    const sim = this.similarity;
    if (!sim || sim.resultId !== this.inspection.resultId) {
      canvas.dataset.state = 'empty';
      return;
    }
    const { grid, placement } = this.inspection;
    const patches = new PatchImage(grid.rows, grid.cols);
    patches.paint(sim.values, 0, valueRange(sim.values), colormapTable('inferno'));
    const area = gridRect(placement, grid);
    patches.drawOnto(ctx, scaleBox(area, scale), false, 0.65);
    canvas.dataset.state = 'drawn';
  }

  protected override updated(): void {
    sizeStages(this);
    this.draw();
    this.paintMatrix();
    this.drawTextMatrix(this.textMatrix());
  }

  private renderMatrix() {
    const matrix = this.matrix?.resultId === this.inspection.resultId ? this.matrix.data : undefined;
    const set = this.matrixSet;
    if (!matrix || !set || matrix.setId !== set.setId) return set ? html`<p class="muted">Comparing ${set.images.length + 1} images…</p>` : nothing;
    const T = matrix.labels.length;
    const names = [this.inspection.image.name, ...set.images.map((i) => i.name)];
    const shown = this.showProbabilities ? matrix.probabilities : matrix.cosine;
    return html`<table class="matrix" id="clip-matrix">
        <tr><th></th>${matrix.labels.map((l) => html`<th>${l}</th>`)}</tr>
        ${names.map((name, i) => html`<tr>
          <th title=${i === 0 ? this.inspection.image.path : set.images[i - 1]!.path}><div class="row-head">
            ${i === 0 ? html`<img class="thumb" alt="" src=${this.imageUrl} />` : html`<canvas class="thumb" data-row=${i}></canvas>`}<span>${name}</span>
          </div></th>
          ${Array.from({ length: T }, (_, t) => {
            const k = i * T + t;
            return html`<td class="num" data-value=${shown[k]!} title=${`100·cos ${(100 * matrix.cosine[k]!).toFixed(2)} · logits_per_image ${matrix.logits[k]!.toFixed(3)} · p ${(100 * matrix.probabilities[k]!).toFixed(1)} %`}>
              ${this.showProbabilities ? `${(100 * shown[k]!).toFixed(1)} %` : (100 * shown[k]!).toFixed(1)}</td>`;
          })}
        </tr>`)}
      </table>
      <p class="muted" id="clip-matrix-info">${names.length} images × ${T} texts; ${this.showProbabilities ? 'per row: softmax of logits_per_image over the texts' : '100 · cosine'}${set.skipped ? `; ${set.skipped} chosen file(s) were not images` : ''}</p>
      ${renderMethodCard(clipMatrixCard(matrix.template, matrix.scale), 'clip-matrix-method')}`;
  }

  private renderTextAttention() {
    const a = this.textAttention?.resultId === this.inspection.resultId ? this.textAttention.data : undefined;
    if (!a) return nothing;
    const values = this.textMatrix()!;
    const T = a.tokens.length;
    const eos = values.subarray(a.pooledAt * T, (a.pooledAt + 1) * T);
    return html`<div class="controls">
        <label>Layer <select id="clip-text-layer" @change=${(e: Event) => (this.textLayer = Number((e.target as HTMLSelectElement).value))}>
          ${Array.from({ length: a.layers }, (_, l) => html`<option value=${l} ?selected=${l === this.textLayer}>${l}</option>`)}
        </select></label>
        <label>Head <select id="clip-text-head" @change=${(e: Event) => {
          const v = (e.target as HTMLSelectElement).value;
          this.textHead = v === 'mean' ? 'mean' : Number(v);
        }}>
          <option value="mean" ?selected=${this.textHead === 'mean'}>Mean of heads</option>
          ${Array.from({ length: a.heads }, (_, h) => html`<option value=${h} ?selected=${h === this.textHead}>${h}</option>`)}
        </select></label>
      </div>
      <p class="muted" id="clip-text-info">"${a.prompt}": ${T} tokens${a.truncated ? ' (cut to the model context)' : ''}; layer ${this.textLayer}, ${this.textHead === 'mean' ? 'mean of heads' : `head ${this.textHead}`}</p>
      <div class="pair">
        <figure><canvas id="clip-text-matrix"></canvas><figcaption>rows: query tokens, columns: keys; 0 … max (inferno)</figcaption></figure>
        <div>
          <h3>End-of-text token's attention <span class="muted">(where the text is pooled)</span></h3>
          <ol class="labels" id="clip-eos-bars">
            ${a.tokens.slice(0, a.pooledAt + 1).map((t, k) => html`<li><span class="label">${displayToken(t)}</span><span class="prob">${(100 * eos[k]!).toFixed(1)} %</span>
              <progress class="bar" max="1" .value=${eos[k]!}></progress></li>`)}
          </ol>
        </div>
      </div>
      ${renderMethodCard(clipTextAttentionCard(this.textLayer, this.textHead, a.pooledAt), 'clip-text-method')}`;
  }

  override render() {
    const { width, height } = this.stageSize();
    return html`<div class="tab-layout">
      <section>
        <div class="stage" data-width=${width} data-height=${height}>
          <img alt=${this.inspection.image.name} src=${this.imageUrl} />
          <canvas id="clip-heatmap"></canvas>
        </div>
        <p class="muted" id="phrase-info">${this.phraseInfo || 'Type a phrase and press Show to see where CLIP finds it.'}</p>
        ${renderMethodCard(clipCard(this.template), 'clip-method')}
        <h3>Images × texts</h3>
        <div class="row">
          <vscode-button id="clip-compare" icon="files" secondary ?disabled=${this.busy !== '' || !this.inspection.hasText}
            @click=${() => api.postMessage({ type: 'chooseImages', resultId: this.inspection.resultId, purpose: 'clipMatrix' })}>Compare with images…</vscode-button>
          ${this.matrixSet ? html`<vscode-checkbox id="clip-matrix-probs" .checked=${this.showProbabilities}
            @change=${(e: Event) => (this.showProbabilities = (e.target as HTMLInputElement).checked)}>Row softmax probabilities</vscode-checkbox>` : nothing}
        </div>
        ${this.matrixSet ? nothing : html`<p class="muted">Add images to see each one against every label: rows images, columns the labels.</p>`}
        ${this.renderMatrix()}
        <h3>Text-tower attention</h3>
        <div class="row">
          <select id="clip-text-select" @change=${(e: Event) => (this.attentionText = (e.target as HTMLSelectElement).value)}>
            ${parseLabels(this.labelsText).map((l) => html`<option value=${l} ?selected=${l === this.attentionText}>${l}</option>`)}
          </select>
          <vscode-button id="clip-text-attention" icon="symbol-text" secondary ?disabled=${this.busy !== '' || !this.inspection.hasText} @click=${() => void this.showTextAttention()}>Show attention</vscode-button>
        </div>
        ${this.renderTextAttention()}
      </section>
      <aside class="side">
        ${this.inspection.hasText ? nothing : html`<p class="error-text">This checkpoint has no text tower: zero-shot labels and heatmaps need one.</p>`}
        <h3>Prompt template</h3>
        <input id="clip-template" class="text-input" .value=${this.template} @input=${(e: Event) => (this.template = (e.target as HTMLInputElement).value)} />
        <h3>Labels <span class="muted">(one per line)</span></h3>
        <textarea id="clip-labels" rows="5" .value=${this.labelsText} @input=${(e: Event) => {
          this.labelsText = (e.target as HTMLTextAreaElement).value;
          this.requestUpdate(); // the text-attention picker lists the labels
        }}></textarea>
        <vscode-button id="clip-classify" icon="tag" ?disabled=${this.busy !== '' || !this.inspection.hasText} @click=${() => void this.classify()}>Classify</vscode-button>
        ${this.scores.length > 0
          ? html`<ol class="labels" id="clip-bars">
              ${this.scores.map(
                (s) => html`<li title="logit ${s.logit.toFixed(3)}"><span class="label">${s.label}</span><span class="prob">${(s.probability * 100).toFixed(1)} %</span>
                  <progress class="bar" max="1" .value=${s.probability}></progress></li>`,
              )}
            </ol>`
          : nothing}
        <h3>Phrase → heatmap</h3>
        <div class="row">
          <input id="clip-phrase" class="text-input" .value=${this.phrase} @input=${(e: Event) => (this.phrase = (e.target as HTMLInputElement).value)}
            @keydown=${(e: KeyboardEvent) => e.key === 'Enter' && void this.showPhrase()} />
          <vscode-button id="clip-show" icon="flame" ?disabled=${this.busy !== '' || !this.inspection.hasText} @click=${() => void this.showPhrase()}>Show</vscode-button>
        </div>
        ${this.busy ? html`<p class="note">${this.busy === 'matrix' ? 'Embedding the images and texts…' : 'Running the text tower…'}</p>` : nothing}
        ${this.error ? html`<p class="error-text" id="clip-error">${this.error}</p>` : nothing}
      </aside>
    </div>`;
  }
}

customElements.define('vi-clip-view', ClipView);
