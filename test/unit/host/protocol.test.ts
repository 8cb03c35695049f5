import * as assert from 'node:assert/strict';
import {
  isSafeFileName,
  parseExplorerToHost,
  parseHostToExplorer,
  parseHostToInspector,
  parseInspectorToHost,
  type FuyuInspection,
  type Inspection,
} from '../../../src/shared/protocol';

const grid = { inputWidth: 32, inputHeight: 32, patchSize: 4, rows: 8, cols: 8, prefixTokens: 1, tokens: 65 };
const dims = { layers: 2, heads: 4, tokens: 65 };

function inspection(): Inspection {
  return {
    modelKind: 'vit',
    resultId: 'abc',
    image: { name: 'cat.png', path: '/w/cat.png', bytes: new ArrayBuffer(10), mime: 'image/png', width: 451, height: 300 },
    model: { kind: 'vit', name: 'vit-photo', path: '/m', modelType: 'vit', layers: 2, heads: 4 },
    grid,
    placement: { sourceWidth: 451, sourceHeight: 300, sourceBox: { x: 0, y: 0, width: 451, height: 300 } },
    labels: [{ index: 0, label: 'tabby cat', logit: 2, probability: 0.5 }],
    clsRows: new ArrayBuffer(2 * 4 * 65 * 4),
    timings: { totalMs: 10, loadMs: 2, inferenceMs: 5, cached: false },
  };
}

describe('host ⇄ webview protocol validation', () => {
  it('accepts every well-formed webview → host message', () => {
    const ok: unknown[] = [
      { type: 'ready' },
      { type: 'requestLayerAttention', requestId: 1, resultId: 'abc', layer: 0 },
      { type: 'requestTokenRows', requestId: 2, resultId: 'abc', token: 12 },
      { type: 'requestRollout', requestId: 3, resultId: 'abc', settings: { headFusion: 'max', discardRatio: 0.9 } },
      { type: 'selectionChanged', resultId: 'abc', selection: { layer: 1, head: 'mean', token: 0, mode: 'rollout' } },
      { type: 'exportPng', suggestedName: 'cat-attn-L1-mean-t0.png', base64: 'iVBORw0KGgo=' },
      { type: 'exportJson', suggestedName: 'cat.json', json: '{}' },
      { type: 'action', action: 'cancel' },
      { type: 'log', level: 'warn', message: 'hi' },
      { type: 'requestZeroShot', requestId: 4, resultId: 'abc', labels: ['a cat', 'a dog'], template: 'a photo of {}.' },
      { type: 'requestTextHeatmap', requestId: 5, resultId: 'abc', phrase: 'a cat', template: '{}' },
      { type: 'requestPatchFilters', requestId: 6, resultId: 'abc' },
      { type: 'requestPaperFigures', requestId: 7, resultId: 'abc', rows: 14, cols: 10 },
      { type: 'startSearch', searchId: 1, resultId: 'abc', targets: ['cat'] },
      { type: 'cancelSearch', searchId: 1 },
    ];
    for (const m of ok) assert.deepEqual(parseInspectorToHost(m), m, JSON.stringify(m));
    for (const side of [0, 33, 2.5]) assert.equal(parseInspectorToHost({ type: 'requestPaperFigures', requestId: 7, resultId: 'abc', rows: side, cols: 8 }), undefined, `rows ${side}`);
    assert.deepEqual(parseExplorerToHost({ type: 'select', resultId: 'abc', selection: { layer: 1, head: 3 } }), { type: 'select', resultId: 'abc', selection: { layer: 1, head: 3 } });
  });

  it('checks the CLIP tabs\' host → webview messages, including buffer sizes', () => {
    const clip = { ...inspection(), modelKind: 'clip', hasText: true };
    assert.ok(parseHostToInspector({ type: 'inspection', inspection: clip }));
    assert.equal(parseHostToInspector({ type: 'inspection', inspection: { ...clip, hasText: undefined } }), undefined);
    const cells = { ...dims, cells: 64 };
    assert.ok(parseHostToInspector({ type: 'textHeatmap', requestId: 1, resultId: 'abc', phrase: 'a cat', similarity: new ArrayBuffer(64 * 4) }, cells));
    assert.equal(parseHostToInspector({ type: 'textHeatmap', requestId: 1, resultId: 'abc', phrase: 'a cat', similarity: new ArrayBuffer(63 * 4) }, cells), undefined);
    assert.ok(parseHostToInspector({ type: 'zeroShot', requestId: 1, resultId: 'abc', scores: [{ label: 'a', logit: 1, probability: 1 }] }));
    assert.equal(parseHostToInspector({ type: 'zeroShot', requestId: 1, resultId: 'abc', scores: [{ label: 'a', logit: NaN, probability: 1 }] }), undefined);
    const filters = { tensor: 'w', hasBias: false, patchSize: 2, count: 2, tiles: new ArrayBuffer(2 * 2 * 2 * 3), rows: 3, cols: 4, responses: new ArrayBuffer(2 * 12 * 4), ranking: [{ channel: 1, energy: 2 }, { channel: 0, energy: 1 }] };
    assert.ok(parseHostToInspector({ type: 'patchFilters', requestId: 1, resultId: 'abc', filters }));
    assert.equal(parseHostToInspector({ type: 'patchFilters', requestId: 1, resultId: 'abc', filters: { ...filters, responses: new ArrayBuffer(4) } }), undefined);
    assert.equal(parseHostToInspector({ type: 'patchFilters', requestId: 1, resultId: 'abc', filters: { ...filters, ranking: [{ channel: 2, energy: 1 }, { channel: 0, energy: 1 }] } }), undefined);
    const rgb = (width: number, height: number) => ({ width, height, data: new ArrayBuffer(width * height * 3) });
    const figures = { trainedRows: 8, trainedCols: 8, rows: 16, cols: 16, positions: rgb(5, 4), components: rgb(3, 2), componentCount: 2, explainedRatio: [0.5, 0.25], filterCount: 32, filterDims: 48,
      distance: { images: 1, svg: '<svg></svg>', layers: 2, heads: 2, values: [1, 2, 3, 4], patchSize: 4, maxDistance: 39.6 } };
    assert.ok(parseHostToInspector({ type: 'paperFigures', requestId: 1, resultId: 'abc', figures }));
    assert.equal(parseHostToInspector({ type: 'paperFigures', requestId: 1, resultId: 'abc', figures: { ...figures, distance: { ...figures.distance, values: [1, 2, 3] } } }), undefined);
    assert.equal(parseHostToInspector({ type: 'paperFigures', requestId: 1, resultId: 'abc', figures: { ...figures, distance: { ...figures.distance, svg: '<img src=x onerror=alert(1)>' } } }), undefined);
    assert.equal(parseHostToInspector({ type: 'paperFigures', requestId: 1, resultId: 'abc', figures: { ...figures, positions: { ...rgb(5, 4), width: 6 } } }), undefined);
    assert.equal(parseHostToInspector({ type: 'paperFigures', requestId: 1, resultId: 'abc', figures: { ...figures, explainedRatio: [0.5] } }), undefined);
    assert.ok(parseHostToInspector({ type: 'searchFailed', searchId: 1, message: 'Search cancelled.', cancelled: true }));
    const heat = { rows: 1, cols: 1, xs: [0, 10], ys: [0, 10], values: [1] };
    const node = { kind: 'node', index: 0, node: { id: 0, box: { x: 0, y: 0, width: 10, height: 10 }, level: 1 }, decision: 'too-small', why: 'small', detection: null, cue: heat, scoring: null, children: [], queue: [] };
    const search = { target: 'cat', status: 'not-found', detection: null, instances: [], steps: [node, { kind: 'stop', index: 1, reason: 'exhausted', why: 'done' }] };
    assert.ok(parseHostToInspector({ type: 'searchDone', searchId: 1, searches: [search], stats: { runs: 1, crops: 1, ms: 5 }, answer: null }));
    // The valid message above with one defect: a heatmap whose cell edges do not match its columns.
    assert.equal(parseHostToInspector({ type: 'searchDone', searchId: 1, searches: [{ ...search, steps: [{ ...node, cue: { ...heat, xs: [0] } }] }], stats: { runs: 1, crops: 1, ms: 5 }, answer: null }), undefined);
  });

  it('rejects malformed webview → host messages', () => {
    const bad: unknown[] = [
      null,
      'ready',
      [],
      { type: 'nope' },
      { type: 'requestLayerAttention', requestId: -1, resultId: 'abc', layer: 0 },
      { type: 'requestZeroShot', requestId: 1, resultId: 'abc', labels: [], template: '{}' },
      { type: 'requestZeroShot', requestId: 1, resultId: 'abc', labels: ['  '], template: '{}' },
      { type: 'requestZeroShot', requestId: 1, resultId: 'abc', labels: ['a cat'], template: 'no slot' },
      { type: 'requestZeroShot', requestId: 1, resultId: 'abc', labels: Array.from({ length: 65 }, (_, i) => `l${i}`), template: '{}' },
      { type: 'requestTextHeatmap', requestId: 1, resultId: 'abc', phrase: 'x'.repeat(301), template: '{}' },
      { type: 'startSearch', searchId: 1, resultId: 'abc', targets: Array.from({ length: 9 }, (_, i) => `t${i}`) },
      { type: 'cancelSearch', searchId: 'one' },
      { type: 'requestLayerAttention', requestId: 1, resultId: 'abc', layer: 1.5 },
      { type: 'requestTokenRows', requestId: 1, resultId: 7, token: 1 },
      { type: 'requestRollout', requestId: 1, resultId: 'abc', settings: { headFusion: 'median', discardRatio: 0 } },
      { type: 'requestRollout', requestId: 1, resultId: 'abc', settings: { headFusion: 'mean', discardRatio: 1 } },
      { type: 'requestRollout', requestId: 1, resultId: 'abc', settings: { headFusion: 'mean', discardRatio: Number.NaN } },
      { type: 'selectionChanged', resultId: 'abc', selection: { layer: 1, head: 'all', token: 0, mode: 'attention' } },
      { type: 'selectionChanged', resultId: 'abc', selection: { layer: 1, head: 0, token: 0, mode: 'gradcam' } },
      { type: 'exportPng', suggestedName: '../../etc/passwd', base64: 'AAAA' },
      { type: 'exportPng', suggestedName: 'a.png', base64: 'not base64!' },
      { type: 'exportJson', suggestedName: 'C:\\x.json', json: '{}' },
      { type: 'action', action: 'rm -rf' },
      { type: 'log', level: 'debug', message: 'x' },
    ];
    for (const m of bad) assert.equal(parseInspectorToHost(m), undefined, JSON.stringify(m));
    assert.equal(parseExplorerToHost({ type: 'select', resultId: 'abc', selection: { layer: -1 } }), undefined);
    assert.equal(parseExplorerToHost({ type: 'select', selection: {} }), undefined);
  });

  it('caps what a webview may log', () => {
    const m = parseInspectorToHost({ type: 'log', level: 'info', message: 'x'.repeat(10_000) });
    assert.equal(m?.type === 'log' && m.message.length, 4000);
  });

  it('checks host → inspector tensors against the result\'s shape', () => {
    const layer = { type: 'layerAttention', requestId: 1, resultId: 'abc', layer: 0, data: new ArrayBuffer(4 * 65 * 65 * 4) };
    assert.ok(parseHostToInspector(layer, dims));
    assert.equal(parseHostToInspector({ ...layer, data: new ArrayBuffer(4 * 65 * 65 * 4 - 4) }, dims), undefined);
    assert.equal(parseHostToInspector({ ...layer, data: new Float32Array(4 * 65 * 65) }, dims), undefined, 'a typed array is not the ArrayBuffer the protocol promises');
    const rows = { type: 'tokenRows', requestId: 2, resultId: 'abc', token: 3, data: new ArrayBuffer(2 * 4 * 65 * 4) };
    assert.ok(parseHostToInspector(rows, dims));
    assert.equal(parseHostToInspector({ ...rows, data: new ArrayBuffer(8) }, dims), undefined);
    const rollout = { type: 'rolloutFactors', requestId: 3, resultId: 'abc', settings: { headFusion: 'min', discardRatio: 0.5 }, data: new ArrayBuffer(2 * 65 * 65 * 4) };
    assert.ok(parseHostToInspector(rollout, dims));
    assert.equal(parseHostToInspector({ ...rollout, data: new ArrayBuffer(65 * 65 * 4) }, dims), undefined);
  });

  it('checks an inspection result, including the [CLS] rows\' size and the model kind', () => {
    assert.ok(parseHostToInspector({ type: 'inspection', inspection: inspection() }));
    assert.equal(parseHostToInspector({ type: 'inspection', inspection: { ...inspection(), clsRows: new ArrayBuffer(12) } }), undefined);
    assert.equal(parseHostToInspector({ type: 'inspection', inspection: { ...inspection(), modelKind: 'resnet' } }), undefined);
    assert.equal(parseHostToInspector({ type: 'inspection', inspection: { ...inspection(), grid: { ...grid, tokens: 64 } } }), undefined);
    const image = { ...inspection().image, mime: 'text/html' };
    assert.equal(parseHostToInspector({ type: 'inspection', inspection: { ...inspection(), image } }), undefined);
  });

  it('checks status, error and selection messages', () => {
    assert.ok(parseHostToInspector({ type: 'status', phase: 'running', message: 'Running…', imageName: 'a.png' }));
    assert.ok(parseHostToInspector({ type: 'error', message: 'bad', imageName: 'a.png', actions: ['retry', 'showLog'] }));
    assert.equal(parseHostToInspector({ type: 'error', message: 'bad', imageName: 'a.png', actions: ['format-disk'] }), undefined);
    assert.ok(parseHostToInspector({ type: 'applySelection', selection: { head: 'mean' } }));
    assert.equal(parseHostToInspector({ type: 'applySelection', selection: { head: -2 } }), undefined);
  });

  it('checks the explorer state buffer against layers × heads × tokens', () => {
    const state = {
      type: 'explorerState', resultId: 'abc', modelKind: 'vit', imageName: 'a.png', modelName: 'm', grid, layers: 2, heads: 4,
      selection: { layer: 1, head: 'mean', token: 0, mode: 'attention' }, rows: new ArrayBuffer(2 * 4 * 65 * 4),
    };
    assert.ok(parseHostToExplorer(state));
    assert.equal(parseHostToExplorer({ ...state, rows: new ArrayBuffer(4) }), undefined);
    assert.equal(parseHostToExplorer({ ...state, modelKind: 'resnet' }), undefined);
    assert.ok(parseHostToExplorer({ type: 'empty', message: 'nothing' }));
  });

  it('accepts only bare file names for exports', () => {
    for (const ok of ['a.png', 'cat-attn-L0-h3-t12.json', 'with space.png']) assert.ok(isSafeFileName(ok), ok);
    for (const bad of ['', '.', '..', 'a/b.png', 'a\\b.png', 'c:x', 'x'.repeat(201), 'nul\u0000.png']) assert.ok(!isSafeFileName(bad), bad);
  });

  it('checks Fuyu generation requests: prompt, token limit and weights', () => {
    const start = { type: 'startFuyuGeneration', generationId: 1, resultId: 'f', prompt: 'What is in this image?\n', maxNewTokens: 20, weights: 'int4' };
    assert.ok(parseInspectorToHost(start));
    assert.ok(parseInspectorToHost({ type: 'cancelFuyuGeneration', generationId: 1 }));
    for (const bad of [
      { ...start, prompt: '  ' },
      { ...start, prompt: 'x'.repeat(2001) },
      { ...start, maxNewTokens: 0 },
      { ...start, maxNewTokens: 257 },
      { ...start, maxNewTokens: 2.5 },
      { ...start, weights: 'int2' },
      { ...start, generationId: -1 },
    ]) assert.equal(parseInspectorToHost(bad), undefined, JSON.stringify({ ...bad, prompt: bad.prompt.slice(0, 20) }));
  });

  it('checks Fuyu results and streamed tokens, and the attention buffer against layers × rows × patches', () => {
    const fuyu: FuyuInspection = {
      modelKind: 'fuyu', resultId: 'f',
      image: { name: 'a.png', path: '/w/a.png', bytes: new ArrayBuffer(4), mime: 'image/png', width: 90, height: 60 },
      model: { kind: 'fuyu', name: 'fuyu-demo', path: '/m', modelType: 'fuyu', layers: 2, heads: 4 },
      patchRows: 5, patchCols: 8, patchWidth: 8, patchHeight: 8, scaleFactor: 2 / 3, parameterCount: 48938, contextLength: 128,
      defaultWeights: 'fp32', estimateTokens: 109,
      memory: [{ weights: 'fp32', weightBytes: 1, kvCacheBytes: 2, activationBytes: 3, totalBytes: 6, summary: '6 B' }],
      timings: { totalMs: 1, loadMs: 0, inferenceMs: 0, cached: false },
    };
    assert.ok(parseHostToInspector({ type: 'fuyuInspection', inspection: fuyu }));
    assert.equal(parseHostToInspector({ type: 'fuyuInspection', inspection: { ...fuyu, patchRows: 0 } }), undefined);
    assert.equal(parseHostToInspector({ type: 'fuyuInspection', inspection: { ...fuyu, defaultWeights: 'bf16' } }), undefined);
    assert.equal(parseHostToInspector({ type: 'fuyuInspection', inspection: { ...fuyu, model: { ...fuyu.model, kind: 'vit' } } }), undefined);
    assert.ok(parseHostToInspector({ type: 'fuyuPrompt', generationId: 1, tokens: [{ kind: 'bos', piece: '<s>' }], sequenceLength: 47, weights: 'fp32' }));
    assert.equal(parseHostToInspector({ type: 'fuyuPrompt', generationId: 1, tokens: [{ kind: 'image', piece: 'x' }], sequenceLength: 47, weights: 'fp32' }), undefined);
    assert.ok(parseHostToInspector({ type: 'fuyuToken', generationId: 1, index: 0, piece: '▁a', text: 'a' }));
    const done = { type: 'fuyuDone', generationId: 1, text: 'a cat', stopped: 'max-new-tokens', layers: 2, rows: 3, attention: new ArrayBuffer(2 * 3 * 40 * 4), ms: 5 };
    const cells = { layers: 2, heads: 4, tokens: 0, cells: 40 };
    assert.ok(parseHostToInspector(done, cells));
    assert.equal(parseHostToInspector({ ...done, attention: new ArrayBuffer(2 * 3 * 39 * 4) }, cells), undefined);
    assert.equal(parseHostToInspector({ ...done, stopped: 'tired' }, cells), undefined);
    assert.ok(parseHostToInspector({ type: 'fuyuFailed', generationId: 1, message: 'no', cancelled: true }));
  });
});

describe('protocol: image sets, the CLIP matrix, text attention, distance over images', () => {
  const thumb = (w: number, h: number) => ({ width: w, height: h, data: new ArrayBuffer(w * h * 3) });
  const set = { setId: 3, purpose: 'clipMatrix', images: [{ name: 'a.png', path: '/w/a.png', thumbnail: thumb(48, 32) }], skipped: 1 };
  const matrix = { setId: 3, labels: ['a cat', 'a dog'], template: '{}', rows: 2, cosine: [0.1, 0.2, 0.3, 0.4], logits: [1, 2, 3, 4], probabilities: [0.3, 0.7, 0.3, 0.7], scale: 10 };
  const attention = { text: 'cat', prompt: 'a cat', tokens: ['<s>', 'a', 'cat', '</s>'], truncated: false, layers: 2, heads: 4, attentions: new ArrayBuffer(2 * 4 * 16 * 4), pooledAt: 3 };
  const distance = { images: 3, svg: '<svg></svg>', layers: 2, heads: 2, values: [1, 2, 3, 4], patchSize: 4, maxDistance: 39.6 };

  it('accepts well-formed messages both ways', () => {
    for (const m of [
      { type: 'chooseImages', resultId: 'abc', purpose: 'attentionDistance' },
      { type: 'requestClipMatrix', requestId: 1, resultId: 'abc', setId: 3, labels: ['a cat'], template: 'a photo of {}' },
      { type: 'requestTextAttention', requestId: 2, resultId: 'abc', text: 'a cat', template: '{}' },
      { type: 'startDistanceOverImages', runId: 1, resultId: 'abc', setId: 3 },
      { type: 'cancelDistanceOverImages', runId: 1 },
    ]) assert.ok(parseInspectorToHost(m), m.type);
    for (const m of [
      { type: 'imageSet', resultId: 'abc', set },
      { type: 'clipMatrix', requestId: 1, resultId: 'abc', matrix },
      { type: 'textAttention', requestId: 2, resultId: 'abc', attention },
      { type: 'distanceProgress', runId: 1, done: 2, total: 3, message: '2 of 3 images' },
      { type: 'distanceDone', runId: 1, distance },
      { type: 'distanceFailed', runId: 1, message: 'Cancelled.', cancelled: true },
    ]) assert.ok(parseHostToInspector(m, dims), m.type);
  });

  it('refuses malformed ones: unknown purposes, paths from the webview, sizes that do not add up', () => {
    assert.equal(parseInspectorToHost({ type: 'chooseImages', resultId: 'abc', purpose: 'anything' }), undefined);
    assert.equal(parseInspectorToHost({ type: 'requestClipMatrix', requestId: 1, resultId: 'abc', setId: -1, labels: ['a'], template: '{}' }), undefined);
    assert.equal(parseInspectorToHost({ type: 'requestClipMatrix', requestId: 1, resultId: 'abc', setId: 3, labels: [], template: '{}' }), undefined);
    assert.equal(parseInspectorToHost({ type: 'requestTextAttention', requestId: 2, resultId: 'abc', text: ' ', template: '{}' }), undefined);
    assert.equal(parseHostToInspector({ type: 'imageSet', resultId: 'abc', set: { ...set, images: [{ ...set.images[0], thumbnail: thumb(200, 200) }] } }), undefined);
    assert.equal(parseHostToInspector({ type: 'imageSet', resultId: 'abc', set: { ...set, purpose: 'other' } }), undefined);
    assert.equal(parseHostToInspector({ type: 'clipMatrix', requestId: 1, resultId: 'abc', matrix: { ...matrix, cosine: [0.1, 0.2, 0.3] } }), undefined);
    assert.equal(parseHostToInspector({ type: 'clipMatrix', requestId: 1, resultId: 'abc', matrix: { ...matrix, logits: [1, 2, 3, NaN] } }), undefined);
    assert.equal(parseHostToInspector({ type: 'textAttention', requestId: 2, resultId: 'abc', attention: { ...attention, attentions: new ArrayBuffer(8) } }), undefined);
    assert.equal(parseHostToInspector({ type: 'textAttention', requestId: 2, resultId: 'abc', attention: { ...attention, pooledAt: 4 } }), undefined);
    assert.equal(parseHostToInspector({ type: 'distanceProgress', runId: 1, done: 4, total: 3, message: '' }), undefined);
    assert.equal(parseHostToInspector({ type: 'distanceDone', runId: 1, distance: { ...distance, images: 0 } }), undefined);
  });
});
