/** A method card (src/shared/method-cards.ts) as a lit template. */
import { html } from 'lit';
import type { MethodCard } from '../../src/shared/method-cards.js';

export function renderMethodCard(card: MethodCard, id: string) {
  return html`<details class="method-card" id=${id} open>
    <summary>Method: ${card.title}</summary>
    ${card.formulas.map((f) => html`<code class="formula">${f}</code>`)}
    ${card.notes.map((n) => html`<p>${n}</p>`)}
  </details>`;
}
