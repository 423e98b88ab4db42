/**
 * `npm run bench:quality`: K-means on every development data set against scikit-learn's KMeans
 * (k-means++, n_init=10), whose inertia and ARI test/fixtures/make_fixtures.py recorded.
 * Prints one JSON line per data set with both figures and the inertia ratio.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { NeuromorphicClusterer } from '../src/clusterer.js';
import { createLogger } from '../src/observability/logger.js';

interface Case {
  name: string;
  source: string;
  k: number;
  inertia: number;
  ari?: number;
  labelColumn?: string;
}

const fixture = JSON.parse(readFileSync('test/fixtures/sklearn.json', 'utf8')) as { kmeans: Case[] };
const logger = createLogger({ level: 'silent' });
for (const c of fixture.kmeans) {
  const path = resolve(c.source);
  if (!existsSync(path)) continue;
  const clusterer = new NeuromorphicClusterer({
    nClusters: c.k,
    seed: 0,
    logger,
    config: { data: { labelColumn: c.labelColumn } },
  });
  const r = await clusterer.fit(path);
  process.stdout.write(
    `${JSON.stringify({
      dataset: c.name,
      k: c.k,
      inertia: Number(r.quality.inertia.toFixed(4)),
      sklearnInertia: Number(c.inertia.toFixed(4)),
      inertiaRatio: Number((r.quality.inertia / c.inertia).toFixed(5)),
      ari: r.external ? Number(r.external.ari.toFixed(4)) : null,
      sklearnAri: c.ari === undefined ? null : Number(c.ari.toFixed(4)),
    })}\n`,
  );
}
