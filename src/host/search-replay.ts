/** V* search records (src/core/search/vstar.ts) as the inspector's replay receives them. No `vscode` here: unit-tested. */
import type { Box, Heatmap, SearchResult } from '../core/search/vstar';
import type { SearchReplay } from '../shared/protocol';

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

