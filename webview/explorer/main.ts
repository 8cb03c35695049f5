/**
 * The Attention Explorer sidebar: follows the active inspector and shows its layer × head grid
 * for the selected token; clicking a tile selects that layer and head in the inspector.
 */
import { LitElement, html } from 'lit';
import { parseHostToExplorer, type ExplorerToHostMessage, type HostToExplorerMessage } from '../../src/shared/protocol.js';
import { tokenPatch } from '../../src/shared/patch-geometry.js';
import '../common/thumbnail-grid.js';
import type { TileSelectDetail } from '../common/thumbnail-grid.js';
import { vscodeApi } from '../common/vscode-api.js';

type ExplorerState = Extract<HostToExplorerMessage, { type: 'explorerState' }>;

const api = vscodeApi<ExplorerToHostMessage, { lastImage?: string }>();

export class ExplorerApp extends LitElement {
  static override properties = { state: { state: true }, emptyMessage: { state: true } };

  declare state: (ExplorerState & { values: Float32Array }) | undefined;
  declare emptyMessage: string;

  constructor() {
    super();
    this.state = undefined;
    this.emptyMessage = 'Loading…';
  }

  protected override createRenderRoot(): HTMLElement {
    return this;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    window.addEventListener('message', this.onMessage);
    api.postMessage({ type: 'ready' });
  }

  override disconnectedCallback(): void {
    window.removeEventListener('message', this.onMessage);
    super.disconnectedCallback();
  }

  private onMessage = (event: MessageEvent): void => {
    const message = parseHostToExplorer(event.data);
    if (!message) return;
    if (message.type === 'empty') {
      this.state = undefined;
      this.emptyMessage = message.message;
    } else {
      this.state = { ...message, values: new Float32Array(message.rows) };
      api.setState({ lastImage: message.imageName });
    }
  };

  private onTileSelect = (event: CustomEvent<TileSelectDetail>): void => {
    if (!this.state) return;
    api.postMessage({ type: 'select', resultId: this.state.resultId, selection: { layer: event.detail.layer, head: event.detail.head, mode: 'attention' } });
  };

  override render() {
    const s = this.state;
    if (!s) return html`<p class="muted explorer-empty" id="explorer-empty">${this.emptyMessage}</p>`;
    const patch = tokenPatch(s.grid, s.selection.token);
    const token = patch ? `token ${s.selection.token} (patch row ${patch.row}, col ${patch.col})` : s.selection.token === 0 ? '[CLS]' : `token ${s.selection.token}`;
    return html`<div class="explorer" id="explorer">
      <p class="explorer-title"><span class="codicon codicon-file-media"></span> <strong>${s.imageName}</strong></p>
      <p class="muted">${s.modelName} · ${s.layers} layers × ${s.heads} heads</p>
      <p id="explorer-selection">Source: ${token}<br />Showing: ${s.selection.mode === 'rollout' ? `rollout through layer ${s.selection.layer}` : `layer ${s.selection.layer}, ${s.selection.head === 'mean' ? 'mean of heads' : `head ${s.selection.head}`}`}</p>
      <vi-thumbnail-grid
        id="explorer-grid"
        .rows=${s.values}
        .grid=${s.grid}
        .layers=${s.layers}
        .heads=${s.heads}
        .layer=${s.selection.layer}
        .head=${s.selection.head}
        max-tile="56"
        @tile-select=${this.onTileSelect}
      ></vi-thumbnail-grid>
    </div>`;
  }
}

customElements.define('vi-explorer', ExplorerApp);
