/** Plain-text renderings of search steps and results (CLI output, logs). */
import type { Box, SearchResult, SearchStep } from './vstar.js';

export function formatBox(b: Box): string {
  return `[${b.x},${b.y} ${b.width}×${b.height}]`;
}

/** One line per step, plus one line listing the children's scores when the node was split. */
export function describeStep(step: SearchStep): string[] {
  if (step.kind === 'stop') return [`step ${step.index}  stop (${step.reason}): ${step.why}`];
  const lines = [`step ${step.index}  node #${step.node.id} L${step.node.level} ${formatBox(step.node.box)}  ${step.decision}: ${step.why}`];
  if (step.detection) lines[0] += ` — detection ${formatBox(step.detection.box)}`;
  if (step.children.length > 0) lines.push(`        children ${step.children.map((c) => `#${c.id} ${c.score.toFixed(4)}`).join(', ')}; queue ${step.queue.length}`);
  return lines;
}

/** "cat: found [x,y w×h] score 0.62 at node #5 after 6 nodes". */
export function describeResult(result: SearchResult): string {
  const nodes = `after ${result.path.length} node${result.path.length === 1 ? '' : 's'}`;
  if (result.status === 'not-found') {
    return `${result.target}: not found ${nodes}${result.detection ? ` (best ${formatBox(result.detection.box)} score ${result.detection.score.toFixed(3)})` : ''}`;
  }
  const extra = result.instances.length > 1 ? `; ${result.instances.length - 1} more instance(s) ${result.instances.slice(1).map((d) => formatBox(d.box)).join(' ')}` : '';
  return `${result.target}: ${result.status === 'found' ? 'found' : 'found (fallback)'} ${formatBox(result.detection!.box)} score ${result.detection!.score.toFixed(3)} at node #${result.nodeId} ${nodes}${extra}`;
}
