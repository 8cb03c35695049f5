/** V* search records (src/core/search/vstar.ts) as the inspector's replay receives them. No `vscode` here: unit-tested. */
import type { ModelExchange, QuestionSearch } from '../core/search/answer';
import type { Box, Heatmap, SearchResult } from '../core/search/vstar';
import type { AnswerExchange, SearchAnswer, SearchReplay } from '../shared/protocol';

/** A recorded search reduced to what the replay draws (the full record stays available from the CLI's --dump). */
export function toReplay(result: SearchResult): SearchReplay {
  const box = (b: Box): Box => ({ x: b.x, y: b.y, width: b.width, height: b.height });
  const scored = (d: { box: Box; score: number }): { box: Box; score: number } => ({ box: box(d.box), score: d.score });
  const heat = (h: Heatmap): Heatmap => ({ rows: h.rows, cols: h.cols, xs: [...h.xs], ys: [...h.ys], values: [...h.values] });
  return {
    target: result.target,
    status: result.status,
    detection: result.detection ? scored(result.detection) : null,
    instances: result.instances.map(scored),
    steps: result.steps.map((s) =>
      s.kind === 'stop'
        ? { kind: 'stop', index: s.index, reason: s.reason, why: s.why }
        : {
            kind: 'node',
            index: s.index,
            node: { id: s.node.id, box: box(s.node.box), level: s.node.level },
            decision: s.decision,
            why: s.why,
            detection: s.detection ? scored(s.detection) : null,
            cue: heat(s.cue),
            scoring: s.scoring ? heat(s.scoring) : null,
            children: s.children.map((c) => ({ id: c.id, box: box(c.box), score: c.score })),
            queue: s.queue.map((q) => ({ id: q.id, box: box(q.box), score: q.score })),
          },
    ),
  };
}


/**
 * The question's side of a search for the replay: the answering model's target proposal and
 * answer (null `model`: none was available, and the note says how to get one).
 */
export function toSearchAnswer(done: QuestionSearch, model: string | null): SearchAnswer {
  const exchange = (e: ModelExchange): AnswerExchange => ({ prompt: e.prompt, imageBox: { x: e.imageBox.x, y: e.imageBox.y, width: e.imageBox.width, height: e.imageBox.height }, text: e.text });
  const list = done.targets.map((t) => `"${t}"`).join(', ');
  const note = model === null
    ? 'No Fuyu model to answer: pick one with "Vision Inspector: Select Model…" (or list it in visionInspector.models); the crops are shown with their CLIP scores.'
    : done.targetsFrom === 'model'
      ? `${model} named the targets: ${list}.`
      : done.proposal
        ? `${model} named no usable target; the list was searched: ${list}.`
        : `The list was searched: ${list}.`;
  return {
    question: done.question,
    model,
    note,
    targetsFrom: done.targetsFrom,
    proposal: done.proposal ? { ...exchange(done.proposal), targets: [...done.proposal.targets] } : null,
    answer: done.answer ? exchange(done.answer) : null,
  };
}
