/**
 * The benches' baseline: ONNX Runtime on the same graph in this process, with the session options
 * the engine's worker uses (so "ours vs bare ORT" ratios compare like with like).
 */
import * as ort from 'onnxruntime-node';
import type { BuiltGraph } from '../../src/core/onnx/graph';

export async function bareSession(graph: BuiltGraph, threads: number): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(graph.bytes, {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    extra: { session: { intra_op: { allow_spinning: '0' }, model_external_initializers_file_folder_path: graph.externalDataDir! } },
  });
}
