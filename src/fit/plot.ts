/** A fit's cluster plot: its features in two PCA dimensions, coloured by cluster, with centroids. */
import type { BackendRegistry } from '../backends/backend.js';
import { renderClusterPlot } from '../report/svg-plot.js';
import type { ClusteringResult } from './result.js';

/** The SVG plot of a result, its PCA run on the backend that fitted it. */
export async function resultPlot(
  result: ClusteringResult,
  registry: BackendRegistry,
  title: string,
): Promise<string> {
  const backend = await registry.get(result.backend);
  const centroids = {
    rows: result.k,
    cols: result.features.cols,
    data: Float64Array.from(result.centroids.flat()),
  };
  // A streamed fit's features are its sample: their labels are their nearest centroids.
  const labels =
    result.labels.length === result.features.rows
      ? result.labels
      : (await backend.kmeansAssign(result.features, centroids)).labels;
  return renderClusterPlot({ backend, points: result.features, labels, centroids, title, seed: result.seed });
}
