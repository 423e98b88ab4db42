/**
 * The whole `hybrid` fit of the GPU proof on n x 16 overlapping blobs, on one backend
 * instance: shared by the GPU bench (WebGPU) and by bench/hybrid-labels.ts, which writes the labels
 * of the same fit on a CPU backend for the GPU run to compare with.
 */
import type { Backend } from '../src/backends/backend.js';
import { jsBackendFactory } from '../src/backends/js/js-backend.js';
import { makeBlobs, registryOf } from '../src/bench/workloads.js';
import { externalQuality } from '../src/cluster/metrics.js';
import { NeuromorphicClusterer } from '../src/clusterer.js';
import type { Timings } from '../src/fit/result.js';
import { createLogger } from '../src/observability/logger.js';

/** 16 columns, 8 blobs whose spread (std 5) makes them overlap: the labels near the borders are at stake. */
export const HYBRID_DATA = { d: 16, k: 8, seed: 0, std: 5 } as const;

export interface HybridFit {
  readonly n: number;
  readonly seconds: number;
  readonly timings: Timings;
  readonly labels: Int32Array;
  /** ARI against the blobs the rows were drawn from. */
  readonly truthAri: number;
  /** Why the fit fell back to CPU K-means, when it did (the figures are then not the backend's). */
  readonly fallback?: unknown;
}

/**
 * Fits `hybrid` with its defaults (seed 0) on `backend`, with the JS backend beside it as the
 * engine's last line of defence: a fit that fell back says why in `fallback`.
 */
export async function hybridFit(backend: Backend, n: number): Promise<HybridFit> {
  const { points, truth } = makeBlobs(n, HYBRID_DATA.d, HYBRID_DATA.k, HYBRID_DATA.seed, HYBRID_DATA.std);
  const registry = registryOf(backend);
  if (backend.name !== 'js') registry.register(jsBackendFactory);
  const clusterer = new NeuromorphicClusterer({
    method: 'hybrid',
    nClusters: HYBRID_DATA.k,
    seed: 0,
    logger: createLogger({ level: 'silent' }),
    registry,
    backend: backend.name,
  });
  const t0 = performance.now();
  const result = await clusterer.fit(points);
  const seconds = (performance.now() - t0) / 1000;
  if (!result.fallbackUsed && result.backend !== backend.name)
    throw new Error(`ran on ${result.backend}, not ${backend.name}`);
  return {
    ...(result.fallbackUsed ? { fallback: { reason: result.fallback, tried: result.backendsTried } } : {}),
    n,
    seconds,
    timings: result.timings,
    labels: result.labels,
    truthAri: externalQuality(truth, result.labels).ari,
  };
}
