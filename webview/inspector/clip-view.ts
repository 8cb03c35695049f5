/**
 * <vi-clip-view>: CLIP zero-shot labels (an editable list and a prompt template → probability
 * bars) and a phrase → heatmap over the patch grid, drawn with the shared patch renderer.
 * Both are computed on the host (text tower + cached image embedding) and arrive as numbers.
 */
import { LitElement, html, nothing } from 'lit';
import { clipCard } from '../../src/shared/method-cards.js';
import { colormapTable, valueRange, formatValue } from '../../src/shared/colormap.js';
import { gridRect } from '../../src/shared/patch-geometry.js';
import type { CLIPInspection, ZeroShotScore } from '../../src/shared/protocol.js';
import { parseLabels } from '../../src/shared/view-helpers.js';
import { fitCanvas, fitSize, PatchImage, sizeStages } from '../common/heatmap.js';
import { renderMethodCard } from '../common/method-card.js';
import type { HostRequest } from './host-request.js';

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
  };

  declare inspection: CLIPInspection;
  declare imageUrl: string;
  declare request: HostRequest;
  declare scores: ZeroShotScore[];
  declare busy: '' | 'labels' | 'phrase';
  declare error: string;
  declare phraseInfo: string;

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
    patches.drawOnto(ctx, { x: area.x * scale, y: area.y * scale, width: area.width * scale, height: area.height * scale }, false, 0.65);
    canvas.dataset.state = 'drawn';
  }

  protected override updated(): void {
    sizeStages(this);
    this.draw();
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
      </section>
      <aside class="side">
        ${this.inspection.hasText ? nothing : html`<p class="error-text">This checkpoint has no text tower: zero-shot labels and heatmaps need one.</p>`}
        <h3>Prompt template</h3>
        <input id="clip-template" class="text-input" .value=${this.template} @input=${(e: Event) => (this.template = (e.target as HTMLInputElement).value)} />
        <h3>Labels <span class="muted">(one per line)</span></h3>
        <textarea id="clip-labels" rows="5" .value=${this.labelsText} @input=${(e: Event) => (this.labelsText = (e.target as HTMLTextAreaElement).value)}></textarea>
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
        ${this.busy ? html`<p class="note">Running the text tower…</p>` : nothing}
        ${this.error ? html`<p class="error-text" id="clip-error">${this.error}</p>` : nothing}
      </aside>
    </div>`;
  }
}

customElements.define('vi-clip-view', ClipView);
