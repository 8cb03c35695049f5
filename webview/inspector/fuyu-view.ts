/**
 * <vi-fuyu-view>: Fuyu on the inspector's image. A prompt (with presets) → the answer streamed
 * token by token; the sequence drawn as the model gets it (image-patch tokens row by row, each
 * row ended by the image-newline token, then the text tokens); choosing a text or generated
 * token draws its attention to every image patch (one layer, mean over heads) over the image.
 * The weight precision is chosen, with its memory estimate, before anything is loaded.
 */
import { LitElement, html, nothing, type PropertyValues } from 'lit';
import { fuyuCard } from '../../src/shared/method-cards.js';
import { colormapTable, formatValue, valueRange } from '../../src/shared/colormap.js';
import {
  MAX_FUYU_NEW_TOKENS,
  MAX_FUYU_PROMPT_CHARS,
  type FuyuInspection,
  type FuyuTextToken,
  type FuyuWeights,
  type HostToInspectorMessage,
  type InspectorToHostMessage,
} from '../../src/shared/protocol.js';
import { fitCanvas, fitSize, PatchImage, sizeStages } from '../common/heatmap.js';
import { renderMethodCard } from '../common/method-card.js';
import { vscodeApi } from '../common/vscode-api.js';

const api = vscodeApi<InspectorToHostMessage, unknown>();

type FuyuMessage = Extract<HostToInspectorMessage, { generationId: number }>;

const PRESETS: { id: string; label: string; prompt: string }[] = [
  { id: 'caption', label: 'Caption', prompt: 'Generate a coco-style caption.\n' },
  { id: 'vqa', label: 'VQA', prompt: 'What is in this image?\n' },
];
const DEFAULT_MAX_NEW_TOKENS = 20;
/** Largest side of one cell of the token-layout picture, in CSS pixels. */
const LAYOUT_CELL = 18;

interface Answer {
  text: string;
  stopped: string;
  layers: number;
  rows: number;
  /** [layers, rows, patches]. */
  attention: Float32Array;
  ms: number;
}

/** The properties the heatmap and the token layout are drawn from. */
const DRAWN_FROM = ['inspection', 'imageUrl', 'answer', 'chosen', 'layer'] as const;

export class FuyuView extends LitElement {
  static override properties = {
    inspection: { attribute: false },
    imageUrl: { attribute: false },
    prompt: { state: true },
    maxNewTokens: { state: true },
    weights: { state: true },
    running: { state: true },
    progress: { state: true },
    textTokens: { state: true },
    generated: { state: true },
    answerText: { state: true },
    answer: { state: true },
    chosen: { state: true },
    layer: { state: true },
    error: { state: true },
  };

  declare inspection: FuyuInspection;
  declare imageUrl: string;
  declare prompt: string;
  declare maxNewTokens: number;
  declare weights: FuyuWeights | undefined;
  /** generationId in progress. */
  declare running: number | undefined;
  declare progress: string;
  /** <s>, the prompt's tokens and <0x04>, as laid out for the last generation. */
  declare textTokens: FuyuTextToken[];
  declare generated: string[];
  declare answerText: string;
  declare answer: Answer | undefined;
  /** Index into textTokens ++ generated. */
  declare chosen: number | undefined;
  declare layer: number;
  declare error: string;

  private nextGenerationId = 1;
  private usedMaxNewTokens = DEFAULT_MAX_NEW_TOKENS;
  private usedWeights: FuyuWeights | undefined;
  private image: HTMLImageElement | undefined;

  constructor() {
    super();
    this.prompt = PRESETS[0]!.prompt;
    this.maxNewTokens = DEFAULT_MAX_NEW_TOKENS;
    this.weights = undefined;
    this.running = undefined;
    this.progress = '';
    this.textTokens = [];
    this.generated = [];
    this.answerText = '';
    this.answer = undefined;
    this.chosen = undefined;
    this.layer = 0;
    this.error = '';
  }

  protected override createRenderRoot(): HTMLElement {
    return this;
  }

  protected override willUpdate(changed: Map<string, unknown>): void {
    const previous = changed.get('inspection') as FuyuInspection | undefined;
    if (changed.has('inspection') && previous?.resultId !== this.inspection.resultId) {
      this.textTokens = [];
      this.generated = [];
      this.answerText = '';
      this.answer = undefined;
      this.chosen = undefined;
      this.layer = this.inspection.model.layers - 1;
      this.error = '';
    }
    if (changed.has('imageUrl') && this.imageUrl) {
      const image = new Image();
      image.onload = () => this.draw();
      image.src = this.imageUrl;
      this.image = image;
    }
  }

  onHostMessage(message: FuyuMessage): void {
    if (message.generationId !== this.running) return;
    switch (message.type) {
      case 'fuyuPrompt':
        this.textTokens = message.tokens;
        this.progress = `${message.sequenceLength} tokens in the prompt sequence; weights ${message.weights}.`;
        return;
      case 'fuyuProgress':
        this.progress = message.message;
        return;
      case 'fuyuToken':
        this.generated = [...this.generated, message.piece];
        this.answerText = message.text;
        return;
      case 'fuyuDone':
        this.running = undefined;
        this.answerText = message.text;
        this.answer = { text: message.text, stopped: message.stopped, layers: message.layers, rows: message.rows, attention: new Float32Array(message.attention), ms: message.ms };
        this.layer = Math.min(this.layer, message.layers - 1);
        this.progress = `${this.generated.length} tokens in ${(message.ms / 1000).toFixed(1)} s, stopped by ${message.stopped === 'stop-token' ? 'the end-of-text token' : 'the token limit'}. Choose a token to see its attention to the image.`;
        // The beginning-of-answer token: its row chose the first answer token.
        this.chosen ??= this.textTokens.length - 1;
        return;
      case 'fuyuFailed':
        this.running = undefined;
        this.progress = '';
        this.error = message.message;
        return;
    }
  }

  private generate(): void {
    if (!this.prompt.trim()) {
      this.error = 'Type a prompt.';
      return;
    }
    if (this.prompt.length > MAX_FUYU_PROMPT_CHARS) {
      this.error = `The prompt has ${this.prompt.length} characters; at most ${MAX_FUYU_PROMPT_CHARS}.`;
      return;
    }
    const maxNewTokens = Math.round(this.maxNewTokens);
    if (!(maxNewTokens >= 1 && maxNewTokens <= MAX_FUYU_NEW_TOKENS)) {
      this.error = `Max new tokens: 1 to ${MAX_FUYU_NEW_TOKENS}.`;
      return;
    }
    const weights = this.chosenWeights();
    this.running = this.nextGenerationId++;
    this.usedMaxNewTokens = maxNewTokens;
    this.usedWeights = weights;
    this.error = '';
    this.progress = 'Starting…';
    this.textTokens = [];
    this.generated = [];
    this.answerText = '';
    this.answer = undefined;
    this.chosen = undefined;
    api.postMessage({ type: 'startFuyuGeneration', generationId: this.running, resultId: this.inspection.resultId, prompt: this.prompt, maxNewTokens, weights });
  }

  private cancel(): void {
    if (this.running !== undefined) api.postMessage({ type: 'cancelFuyuGeneration', generationId: this.running });
  }

  private chosenWeights(): FuyuWeights {
    return this.weights ?? this.inspection.defaultWeights;
  }

  /** The attention row of the chosen token, or why there is none. */
  private chosenRow(): { values: Float32Array } | { reason: string } | undefined {
    const answer = this.answer;
    if (this.chosen === undefined) return undefined;
    if (!answer) return { reason: 'Attention is available once generation ends.' };
    if (this.chosen >= answer.rows) return { reason: 'The last generated token was never fed back into the model, so it attends to nothing: it has no attention row.' };
    const P = this.inspection.patchRows * this.inspection.patchCols;
    const start = (this.layer * answer.rows + this.chosen) * P;
    return { values: answer.attention.subarray(start, start + P) };
  }

  private stageSize() {
    return fitSize(this.inspection.image.width, this.inspection.image.height, 520, 420);
  }

  private draw(): void {
    this.drawHeatmap();
    this.drawLayout();
  }

  private drawHeatmap(): void {
    const canvas = this.querySelector<HTMLCanvasElement>('#fuyu-heatmap');
    if (!canvas) return;
    const { width, height, scale } = this.stageSize();
    const ctx = fitCanvas(canvas, width, height);
    ctx.clearRect(0, 0, width, height);
    const row = this.chosenRow();
    if (!row || !('values' in row)) {
      canvas.dataset.state = 'empty';
      return;
    }
    const { patchRows, patchCols } = this.inspection;
    const patches = new PatchImage(patchRows, patchCols);
    patches.paint(row.values, 0, valueRange(row.values), colormapTable('inferno'));
    const grid = this.gridRect(scale);
    // Patches past the image's edge hold padding: clip them to the picture.
    ctx.save();
    ctx.beginPath();
    ctx.rect(0, 0, width, height);
    ctx.clip();
    patches.drawOnto(ctx, grid, false, 0.7);
    ctx.restore();
    canvas.dataset.state = 'drawn';
    canvas.dataset.token = String(this.chosen);
    canvas.dataset.layer = String(this.layer);
  }

  /** The patch grid on the stage: patches are cut from the resized image (image pixels × scaleFactor). */
  private gridRect(scale: number) {
    const { patchRows, patchCols, patchWidth, patchHeight, scaleFactor } = this.inspection;
    return { x: 0, y: 0, width: ((patchCols * patchWidth) / scaleFactor) * scale, height: ((patchRows * patchHeight) / scaleFactor) * scale };
  }

  /**
   * The image block of the sequence: each patch token shows its piece of the image (tinted by
   * the chosen token's attention once there is one), each row ends with the image-newline token.
   */
  private drawLayout(): void {
    const canvas = this.querySelector<HTMLCanvasElement>('#fuyu-layout');
    if (!canvas) return;
    const { patchRows, patchCols, patchWidth, patchHeight, scaleFactor } = this.inspection;
    const cell = Math.max(4, Math.min(LAYOUT_CELL, Math.floor(520 / (patchCols + 1))));
    const gap = cell >= 10 ? 1 : 0;
    const width = (patchCols + 1) * cell;
    const height = patchRows * cell;
    const ctx = fitCanvas(canvas, width, height);
    ctx.clearRect(0, 0, width, height);
    const row = this.chosenRow();
    const values = row && 'values' in row ? row.values : undefined;
    const range = values ? valueRange(values) : undefined;
    const table = colormapTable('inferno');
    const style = getComputedStyle(this);
    for (let r = 0; r < patchRows; r++) {
      for (let c = 0; c < patchCols; c++) {
        const x = c * cell;
        const y = r * cell;
        if (this.image?.complete && this.image.naturalWidth > 0) {
          const sx = (c * patchWidth) / scaleFactor;
          const sy = (r * patchHeight) / scaleFactor;
          ctx.drawImage(this.image, sx, sy, patchWidth / scaleFactor, patchHeight / scaleFactor, x, y, cell - gap, cell - gap);
        }
        if (values && range) {
          const t = range.max > range.min ? (values[r * patchCols + c]! - range.min) / (range.max - range.min) : 1;
          const k = Math.round(t * 255) * 4;
          ctx.fillStyle = `rgba(${table[k]}, ${table[k + 1]}, ${table[k + 2]}, 0.75)`;
          ctx.fillRect(x, y, cell - gap, cell - gap);
        }
      }
      ctx.fillStyle = style.getPropertyValue('--vscode-badge-background') || '#4d4d4d';
      ctx.fillRect(patchCols * cell, r * cell, cell - gap, cell - gap);
      if (cell >= 12) {
        ctx.fillStyle = style.getPropertyValue('--vscode-badge-foreground') || '#fff';
        ctx.font = `${cell - 6}px sans-serif`;
        ctx.textAlign = 'center';
        ctx.textBaseline = 'middle';
        ctx.fillText('↵', patchCols * cell + (cell - gap) / 2, r * cell + (cell - gap) / 2);
      }
    }
    canvas.dataset.state = 'drawn';
  }

  protected override updated(changed: PropertyValues): void {
    sizeStages(this);
    // Not on every streamed token, progress message or keystroke: the pictures depend on these only
    // (the image's load event draws as well).
    if (DRAWN_FROM.some((p) => changed.has(p))) this.draw();
  }

  /** Text tokens count from <s>; generated ones from 1, as the answer reads. */
  private tokenName(index: number): string {
    return index < this.textTokens.length ? `Text token ${index}` : `Generated token ${index - this.textTokens.length + 1}`;
  }

  private renderToken(token: FuyuTextToken, index: number) {
    const shown = token.piece.replace(/▁/g, '␣').replace(/\n/g, '⏎') || '∅';
    const classes = ['token', token.kind, index === this.chosen ? 'chosen' : ''].join(' ');
    return html`<button class=${classes} data-index=${String(index)} title=${`${this.tokenName(index)} (${token.kind})`}
      @click=${() => (this.chosen = index)}>${shown}</button>`;
  }

  override render() {
    const inspection = this.inspection;
    const { width, height } = this.stageSize();
    const weights = this.chosenWeights();
    const estimate = inspection.memory.find((m) => m.weights === weights);
    const row = this.chosenRow();
    const all: FuyuTextToken[] = [...this.textTokens, ...this.generated.map((piece) => ({ kind: 'generated' as const, piece }))];
    const values = row && 'values' in row ? row.values : undefined;
    const range = values ? valueRange(values) : undefined;
    return html`<div class="tab-layout">
      <section>
        <div class="stage" data-width=${width} data-height=${height}>
          <img alt=${inspection.image.name} src=${this.imageUrl} />
          <canvas id="fuyu-heatmap"></canvas>
        </div>
        <p class="muted" id="fuyu-map-info">${row === undefined
          ? 'Generate, then choose a token to see its attention to the image patches.'
          : 'reason' in row
            ? row.reason
            : `${this.tokenName(this.chosen!)} (“${all[this.chosen!]?.piece ?? ''}”), layer ${this.layer}, mean over ${inspection.model.heads} heads: ${formatValue(range!.min)} … ${formatValue(range!.max)} of its attention on one patch.`}</p>
        <h3>Token layout <span class="muted">(${inspection.patchRows} rows of ${inspection.patchCols} image tokens, each ended by an image-newline token ↵; then the text)</span></h3>
        <canvas id="fuyu-layout"></canvas>
        <div class="token-list" id="fuyu-tokens">
          ${all.length === 0 ? html`<span class="muted">Text tokens appear here when generation starts: &lt;s&gt;, the prompt, &lt;0x04&gt;, then the answer.</span>` : all.map((t, i) => this.renderToken(t, i))}
        </div>
        ${renderMethodCard(fuyuCard({ weights: this.usedWeights ?? weights, maxNewTokens: this.usedMaxNewTokens, patchRows: inspection.patchRows, patchCols: inspection.patchCols, layer: this.layer }), 'fuyu-method')}
      </section>
      <aside class="side">
        <h3>Prompt</h3>
        <div class="row">
          ${PRESETS.map((p) => html`<vscode-button secondary id=${`fuyu-preset-${p.id}`} @click=${() => (this.prompt = p.prompt)}>${p.label}</vscode-button>`)}
        </div>
        <textarea id="fuyu-prompt" rows="3" maxlength=${String(MAX_FUYU_PROMPT_CHARS)} .value=${this.prompt} @input=${(e: Event) => (this.prompt = (e.target as HTMLTextAreaElement).value)}></textarea>
        <label class="row">Max new tokens
          <input id="fuyu-max-tokens" class="text-input" type="number" min="1" max=${String(MAX_FUYU_NEW_TOKENS)} .value=${String(this.maxNewTokens)}
            @change=${(e: Event) => (this.maxNewTokens = Number((e.target as HTMLInputElement).value))} />
        </label>
        <label class="row">Weights
          <select id="fuyu-weights" .value=${weights} ?disabled=${this.running !== undefined} @change=${(e: Event) => (this.weights = (e.target as HTMLSelectElement).value as FuyuWeights)}>
            ${inspection.memory.map((m) => html`<option value=${m.weights} ?selected=${m.weights === weights}>${m.weights}${m.weights === inspection.defaultWeights ? ' (default for this size)' : ''}</option>`)}
          </select>
        </label>
        <p class="muted" id="fuyu-memory">${(inspection.parameterCount / 1e6).toFixed(inspection.parameterCount < 1e6 ? 3 : 0)} M parameters. Estimated memory with ${weights}: ${estimate?.summary ?? '?'} for ${inspection.estimateTokens} positions.</p>
        <div class="row">
          <vscode-button id="fuyu-generate" icon="play" ?disabled=${this.running !== undefined} @click=${() => this.generate()}>Generate</vscode-button>
          ${this.running !== undefined ? html`<vscode-button id="fuyu-cancel" secondary icon="close" @click=${() => this.cancel()}>Cancel</vscode-button>` : nothing}
        </div>
        ${this.progress ? html`<p class="note" id="fuyu-progress">${this.progress}</p>` : nothing}
        ${this.error ? html`<p class="error-text" id="fuyu-error">${this.error}</p>` : nothing}
        <h3>Answer</h3>
        <p id="fuyu-answer" class="answer">${this.answerText || html`<span class="muted">—</span>`}</p>
        ${this.answer
          ? html`<label class="row">Layer
              <select id="fuyu-layer" .value=${String(this.layer)} @change=${(e: Event) => (this.layer = Number((e.target as HTMLSelectElement).value))}>
                ${Array.from({ length: this.answer.layers }, (_, l) => html`<option value=${String(l)} ?selected=${l === this.layer}>${l}</option>`)}
              </select>
            </label>`
          : nothing}
      </aside>
    </div>`;
  }
}

customElements.define('vi-fuyu-view', FuyuView);
