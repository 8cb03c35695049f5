/**
 * <vi-search-view>: V* guided search with CLIP. The host runs the search (progress, Cancel) and
 * sends the recorded steps; this replays them: a timeline with play/step controls, the current
 * box, its sub-boxes coloured by score, the heatmap it used, the queue, and the final crops of
 * every target side by side with the answer (Fuyu's, when a Fuyu model answers the question;
 * otherwise the crops' CLIP scores are the answer).
 */
import { LitElement, html, nothing } from 'lit';
import { colormapTable } from '../../src/shared/colormap.js';
import { searchCard } from '../../src/shared/method-cards.js';
import { targetsFromQuestion } from '../../src/core/search/answer.js';
import { MAX_FUYU_PROMPT_CHARS, MAX_TEXT_CHARS, type CLIPInspection, type InspectorToHostMessage, type HostToInspectorMessage, type ReplayBox, type ReplayHeatmap, type ReplayStep, type SearchAnswer, type SearchReplay } from '../../src/shared/protocol.js';
import { parseLabels, relativeScores, scaleBox } from '../../src/shared/view-helpers.js';
import { fitCanvas, fitSize, sizeStages } from '../common/heatmap.js';
import { renderMethodCard } from '../common/method-card.js';
import { vscodeApi } from '../common/vscode-api.js';

const PLAY_INTERVAL_MS = 900;
const api = vscodeApi<InspectorToHostMessage, unknown>();

type SearchMessage = Extract<HostToInspectorMessage, { searchId: number }>;

export class SearchView extends LitElement {
  static override properties = {
    inspection: { attribute: false },
    imageUrl: { attribute: false },
    running: { state: true },
    progress: { state: true },
    error: { state: true },
    searches: { state: true },
    current: { state: true },
    stepIndex: { state: true },
    playing: { state: true },
    stats: { state: true },
  };

  declare inspection: CLIPInspection;
  declare imageUrl: string;
  declare running: number | undefined;
  declare progress: string;
  declare error: string;
  declare searches: { resultId: string; list: SearchReplay[]; answer: SearchAnswer | null } | undefined;
  declare current: number;
  declare stepIndex: number;
  declare playing: boolean;
  declare stats: string;

  private targetsText = 'cat';
  private questionText = '';
  /** Set once the user edits the targets: the question then no longer rewrites them. */
  private targetsEdited = false;
  private askTargets = true;
  private nextSearchId = 1;
  private timer: ReturnType<typeof setInterval> | undefined;
  private image: HTMLImageElement | undefined;

  constructor() {
    super();
    this.running = undefined;
    this.progress = '';
    this.error = '';
    this.searches = undefined;
    this.current = 0;
    this.stepIndex = 0;
    this.playing = false;
    this.stats = '';
  }

  protected override createRenderRoot(): HTMLElement {
    return this;
  }

  override disconnectedCallback(): void {
    this.stop();
    super.disconnectedCallback();
  }

  /** The inspector forwards the search messages here. */
  onHostMessage(message: SearchMessage): void {
    if (message.searchId !== this.running) return;
    if (message.type === 'searchProgress') {
      this.progress = message.message;
    } else if (message.type === 'searchDone') {
      this.running = undefined;
      this.progress = '';
      this.searches = { resultId: this.inspection.resultId, list: message.searches, answer: message.answer };
      this.current = 0;
      this.stepIndex = 0;
      this.stats = `${message.stats.crops} crops in ${message.stats.runs} vision runs, ${(message.stats.ms / 1000).toFixed(1)} s`;
    } else if (message.type === 'searchFailed') {
      this.running = undefined;
      this.progress = '';
      this.error = message.message;
    }
  }

  private start(): void {
    const targets = parseLabels(this.targetsText, 8);
    if (targets.length === 0) {
      this.error = 'Type what to look for.';
      return;
    }
    if (targets.some((t) => t.length > MAX_TEXT_CHARS)) {
      this.error = `A target has more than ${MAX_TEXT_CHARS} characters; shorten it.`;
      return;
    }
    if (this.questionText.trim().length > MAX_FUYU_PROMPT_CHARS) {
      this.error = `The question has more than ${MAX_FUYU_PROMPT_CHARS} characters; shorten it.`;
      return;
    }
    this.stop();
    this.error = '';
    this.running = this.nextSearchId++;
    this.progress = 'Starting…';
    const question = this.questionText.trim();
    api.postMessage({ type: 'startSearch', searchId: this.running, resultId: this.inspection.resultId, targets, ...(question ? { question, askTargets: this.askTargets } : {}) });
  }

  /** The question's noun phrases become the (editable) target list until the user edits it. */
  private setQuestion(question: string): void {
    this.questionText = question;
    if (!this.targetsEdited) {
      const targets = targetsFromQuestion(question).slice(0, 8);
      if (targets.length > 0) this.targetsText = targets.join(', ');
    }
    this.requestUpdate();
  }

  private cancel(): void {
    if (this.running !== undefined) api.postMessage({ type: 'cancelSearch', searchId: this.running });
  }

  private get search(): SearchReplay | undefined {
    return this.searches?.resultId === this.inspection.resultId ? this.searches.list[this.current] : undefined;
  }

  private go(index: number): void {
    const steps = this.search?.steps.length ?? 0;
    this.stepIndex = Math.min(Math.max(0, index), Math.max(0, steps - 1));
  }

  private togglePlay(): void {
    if (this.playing) return this.stop();
    const steps = this.search?.steps.length ?? 0;
    if (this.stepIndex >= steps - 1) this.stepIndex = 0;
    this.playing = true;
    this.timer = setInterval(() => {
      if (this.stepIndex >= (this.search?.steps.length ?? 0) - 1) this.stop();
      else this.stepIndex++;
    }, PLAY_INTERVAL_MS);
  }

  private stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.playing = false;
  }

  private stageSize() {
    return fitSize(this.inspection.image.width, this.inspection.image.height, 560, 440);
  }

  private draw(): void {
    const canvas = this.querySelector<HTMLCanvasElement>('#search-canvas');
    const search = this.search;
    if (!canvas) return;
    const { width, height, scale } = this.stageSize();
    const ctx = fitCanvas(canvas, width, height);
    ctx.clearRect(0, 0, width, height);
    const step = search?.steps[this.stepIndex];
    if (!search || !step) {
      canvas.dataset.state = 'empty';
      return;
    }
    const table = colormapTable('inferno');
    const colour = (t: number, alpha: number): string => {
      const i = Math.round(Math.min(1, Math.max(0, t)) * 255) * 4;
      return `rgba(${table[i]}, ${table[i + 1]}, ${table[i + 2]}, ${alpha})`;
    };
    const rect = (b: ReplayBox, stroke: string, lineWidth: number, dash: number[] = []): void => {
      const r = scaleBox(b, scale);
      ctx.setLineDash(dash);
      ctx.strokeStyle = stroke;
      ctx.lineWidth = lineWidth;
      ctx.strokeRect(r.x + lineWidth / 2, r.y + lineWidth / 2, r.width - lineWidth, r.height - lineWidth);
      ctx.setLineDash([]);
    };
    if (step.kind === 'node') {
      // The heatmap the children were scored with (else the target cue), clipped to the node.
      const map = step.scoring ?? step.cue;
      const node = scaleBox(step.node.box, scale);
      ctx.save();
      ctx.beginPath();
      ctx.rect(node.x, node.y, node.width, node.height);
      ctx.clip();
      drawHeatmap(ctx, map, scale, (t) => colour(t, 0.5));
      ctx.restore();
      const relative = relativeScores(step.children.map((c) => c.score));
      step.children.forEach((c, i) => rect(c.box, colour(0.25 + 0.75 * relative[i]!, 1), 3));
      rect(step.node.box, '#ffffff', 2, [6, 4]);
      if (step.detection) rect(step.detection.box, '#3fb950', 3);
      canvas.dataset.box = `${step.node.box.x},${step.node.box.y},${step.node.box.width},${step.node.box.height}`;
    } else {
      for (const d of search.instances) rect(d.box, '#3fb950', 3);
      canvas.dataset.box = 'stop';
    }
    canvas.dataset.step = String(this.stepIndex);
    canvas.dataset.state = 'drawn';
  }

  private async drawCrops(): Promise<void> {
    const search = this.search;
    if (!search) return;
    if (!this.image || this.image.src !== this.imageUrl) {
      this.image = new Image();
      this.image.src = this.imageUrl;
    }
    await this.image.decode().catch(() => undefined);
    this.querySelectorAll<HTMLCanvasElement>('canvas.crop').forEach((canvas) => {
      const d = this.searches?.list[Number(canvas.dataset.search)]?.instances[Number(canvas.dataset.instance)];
      if (!d || !this.image) return;
      const { width, height } = fitSize(d.box.width, d.box.height, 160, 160);
      const ctx = fitCanvas(canvas, width, height);
      ctx.drawImage(this.image, d.box.x, d.box.y, d.box.width, d.box.height, 0, 0, width, height);
    });
  }

  protected override updated(): void {
    sizeStages(this);
    this.draw();
    void this.drawCrops();
  }

  private renderStep(step: ReplayStep | undefined) {
    if (!step) return nothing;
    if (step.kind === 'stop') return html`<p id="step-why"><strong>Stop (${step.reason})</strong>: ${step.why}</p>`;
    return html`<p id="step-why"><strong>Node ${step.node.id}</strong> (level ${step.node.level}, ${step.node.box.width}×${step.node.box.height} at ${step.node.box.x}, ${step.node.box.y}) —
        <span class="decision">${step.decision}</span>: ${step.why}</p>
      ${step.children.length > 0 ? html`<p class="muted">Sub-boxes: ${step.children.map((c) => `#${c.id} ${c.score.toFixed(3)}`).join(' · ')}</p>` : nothing}
      <h3>Queue <span class="muted">(${step.queue.length}, next first)</span></h3>
      <ol class="queue" id="search-queue">${step.queue.slice(0, 12).map((q) => html`<li>#${q.id} · ${q.box.width}×${q.box.height} at ${q.box.x}, ${q.box.y} · ${q.score.toFixed(3)}</li>`)}</ol>`;
  }

  override render() {
    const { width, height } = this.stageSize();
    const search = this.search;
    const steps = search?.steps.length ?? 0;
    return html`<div class="controls">
        <label>Question <span class="muted">(optional; a Fuyu model, if selected, answers it)</span>
          <input id="search-question" class="text-input wide" maxlength=${String(MAX_FUYU_PROMPT_CHARS)} .value=${this.questionText} placeholder="What is the colour of the cat's collar?"
            @input=${(e: Event) => this.setQuestion((e.target as HTMLInputElement).value)}
            @keydown=${(e: KeyboardEvent) => e.key === 'Enter' && this.running === undefined && this.start()} />
        </label>
        ${this.questionText.trim()
          ? html`<vscode-checkbox id="search-ask-targets" .checked=${this.askTargets} @change=${(e: Event) => (this.askTargets = (e.target as HTMLInputElement).checked)}>Ask Fuyu for the targets (the list is the fallback)</vscode-checkbox>`
          : nothing}
      </div>
      <div class="controls">
        <label>Targets <span class="muted">(comma-separated)</span>
          <input id="search-targets" class="text-input wide" .value=${this.targetsText} @input=${(e: Event) => { this.targetsText = (e.target as HTMLInputElement).value; this.targetsEdited = true; }}
            @keydown=${(e: KeyboardEvent) => e.key === 'Enter' && this.running === undefined && this.start()} />
        </label>
        <vscode-button id="search-run" icon="search" ?disabled=${this.running !== undefined || !this.inspection.hasText} @click=${() => this.start()}>Search</vscode-button>
        ${this.running !== undefined
          ? html`<vscode-button id="search-cancel" secondary icon="close" @click=${() => this.cancel()}>Cancel</vscode-button>
              <vscode-progress-ring></vscode-progress-ring><span id="search-progress">${this.progress}</span>`
          : nothing}
        ${this.error ? html`<span class="error-text" id="search-error">${this.error}</span>` : nothing}
      </div>
      ${search
        ? html`<div class="controls" id="timeline">
            ${this.searches!.list.length > 1
              ? html`<label>Target <select id="search-target-select" @change=${(e: Event) => { this.stop(); this.current = Number((e.target as HTMLSelectElement).value); this.stepIndex = 0; }}>
                  ${this.searches!.list.map((s, i) => html`<option value=${String(i)} ?selected=${i === this.current}>${s.target}</option>`)}</select></label>`
              : nothing}
            <vscode-button secondary icon="debug-step-back" id="step-prev" ?disabled=${this.stepIndex === 0} @click=${() => { this.stop(); this.go(this.stepIndex - 1); }}>Back</vscode-button>
            <vscode-button icon=${this.playing ? 'debug-pause' : 'play'} id="step-play" @click=${() => this.togglePlay()}>${this.playing ? 'Pause' : 'Play'}</vscode-button>
            <vscode-button secondary icon="debug-step-over" id="step-next" ?disabled=${this.stepIndex >= steps - 1} @click=${() => { this.stop(); this.go(this.stepIndex + 1); }}>Step</vscode-button>
            <input id="step-slider" type="range" min="0" max=${String(Math.max(0, steps - 1))} .value=${String(this.stepIndex)} @input=${(e: Event) => { this.stop(); this.go(Number((e.target as HTMLInputElement).value)); }} />
            <span id="step-label">step ${this.stepIndex + 1} of ${steps}</span>
            <span class="muted">"${search.target}": ${search.status}${search.detection ? ` (score ${search.detection.score.toFixed(3)})` : ''} · ${this.stats}</span>
          </div>`
        : nothing}
      <div class="tab-layout">
        <section>
          <div class="stage" data-width=${width} data-height=${height}>
            <img alt=${this.inspection.image.name} src=${this.imageUrl} />
            <canvas id="search-canvas"></canvas>
          </div>
          <p class="muted">White dashed: the box expanded; coloured: its sub-boxes by score (bright = high); green: detection. Shading: the heatmap the sub-boxes were scored with.</p>
          ${renderMethodCard(searchCard(), 'search-method')}
        </section>
        <aside class="side">
          ${search ? this.renderStep(search.steps[this.stepIndex]) : html`<p class="muted">Type one or more objects and press Search. The steps can then be replayed.</p>`}
        </aside>
      </div>
      ${search ? this.renderFinal(this.searches!.list, this.searches!.answer) : nothing}`;
  }

  /** Every target's final crops side by side (cut from the image, with their CLIP scores), then the answer. */
  private renderFinal(list: SearchReplay[], answer: SearchAnswer | null) {
    const exchange = (title: string, e: { prompt: string; imageBox: ReplayBox; text: string }, id: string) =>
      html`<details class="exchange" id=${id}><summary>${title}</summary>
        <p class="muted">On the ${e.imageBox.width}×${e.imageBox.height} px region at ${e.imageBox.x}, ${e.imageBox.y}. Prompt:</p><pre>${e.prompt}</pre>
        <p class="muted">Reply:</p><pre>${e.text || '(empty)'}</pre></details>`;
    return html`<section class="final" id="search-final">
      <h3>Final crops${answer ? html` <span class="muted">for “${answer.question}”</span>` : nothing}</h3>
      <div class="crops" id="search-crops">
        ${list.map((s, i) => s.instances.length === 0
          ? html`<figure class="missing"><div class="no-crop">not found</div><figcaption><strong>${s.target}</strong><br />${s.detection ? `best score ${s.detection.score.toFixed(3)}, below the thresholds` : 'no detection'}</figcaption></figure>`
          : s.instances.map((d, k) => html`<figure><canvas class="crop" data-search=${String(i)} data-instance=${String(k)}></canvas>
              <figcaption><strong>${s.target}</strong>${s.instances.length > 1 ? ` (${k + 1})` : ''} · ${s.status}<br />CLIP score ${d.score.toFixed(3)} · ${d.box.width}×${d.box.height} at ${d.box.x}, ${d.box.y}</figcaption></figure>`))}
      </div>
      <div class="answer" id="search-answer">
        ${answer?.answer
          ? html`<p><strong>${answer.model} answers:</strong> <span id="search-answer-text">${answer.answer.text || '(an empty reply)'}</span></p>`
          : html`<p><strong>Answer (CLIP scores):</strong> <span id="search-answer-text">${list.map((s) => `${s.target}: ${s.detection && s.status !== 'not-found' ? `${s.status} (score ${s.detection.score.toFixed(3)})` : 'not found'}`).join(' · ')}</span></p>`}
        ${answer ? html`<p class="muted" id="search-answer-note">${answer.note}</p>` : nothing}
        ${answer?.proposal ? exchange(`Which objects? ${answer.model} named: ${answer.proposal.targets.length > 0 ? answer.proposal.targets.join(', ') : 'nothing usable'}`, answer.proposal, 'search-proposal') : nothing}
        ${answer?.answer ? exchange(`What ${answer.model} was asked`, answer.answer, 'search-answer-prompt') : nothing}
      </div>
    </section>`;
  }
}

/** A piecewise-constant heatmap (cells between its xs × ys edges, image pixels) filled with colours of its min…max. */
function drawHeatmap(ctx: CanvasRenderingContext2D, map: ReplayHeatmap, scale: number, colour: (t: number) => string): void {
  const relative = relativeScores(map.values);
  for (let r = 0; r < map.rows; r++) {
    for (let c = 0; c < map.cols; c++) {
      const x0 = map.xs[c]! * scale;
      const y0 = map.ys[r]! * scale;
      ctx.fillStyle = colour(relative[r * map.cols + c]!);
      ctx.fillRect(x0, y0, map.xs[c + 1]! * scale - x0, map.ys[r + 1]! * scale - y0);
    }
  }
}

customElements.define('vi-search-view', SearchView);
