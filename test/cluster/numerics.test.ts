/**
 * Finite values at the ends of float64 (issue 18, item 13): data near 1e300 or subnormal is
 * standardized and clustered as the same data at ordinary scale, the scale-free metrics do not
 * change with the scale, and where a result cannot be represented (unstandardized values whose
 * squared distances overflow or underflow, an inertia past float64) the answer is NUMERICAL, never
 * labels all 0 with inertia 0.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { JsBackend } from '../../src/backends/js/js-backend.js';
import {
  calinskiHarabasz,
  daviesBouldin,
  encodeLabels,
  internalQuality,
  silhouetteScore,
} from '../../src/cluster/metrics.js';
import { NeuromorphicClusterer } from '../../src/clusterer.js';
import { zNormalizeSeries } from '../../src/data/clean.js';
import { columnMoments, stridedMoments } from '../../src/linalg/moments.js';
import { createLogger } from '../../src/observability/logger.js';
import { failure, ROOT, relErr, runCli, tempDir } from '../helpers.js';

const dir = tempDir();
const quiet = createLogger({ level: 'silent' });

/** Iris with an id column (so the canonical row order is the same at every scale), values times `scale`. */
const irisLines = readFileSync(join(ROOT, 'examples/iris.csv'), 'utf8').trim().split('\n');
const irisRows = irisLines.slice(1).map((l) => l.split(','));
const irisValues = irisRows.map((r) => r.slice(0, 4).map(Number));
const species = irisRows.map((r) => r[4]!);
function irisAt(scale: number): string {
  const path = join(dir, `iris-${scale}.csv`);
  const lines = irisValues.map((v, i) => `r${i},${v.map((x) => String(x * scale)).join(',')},${species[i]}`);
  writeFileSync(path, `id,${irisLines[0]}\n${lines.join('\n')}\n`);
  return path;
}
function matrixAt(scale: number) {
  return { rows: 150, cols: 4, data: Float64Array.from(irisValues.flat(), (x) => x * scale) };
}
const truth = encodeLabels(species).codes;

function clusterer(method: 'kmeans' | 'hybrid', standardize = true) {
  return new NeuromorphicClusterer({
    method,
    nClusters: 3,
    seed: 7,
    backend: 'js',
    logger: quiet,
    config: { data: { labelColumn: 'species', idColumn: 'id', standardize } },
  });
}

describe('column moments without overflow', () => {
  it('are those of the plain data times the scale, for values near 1e300 and subnormal ones', () => {
    const plain = columnMoments(matrixAt(1));
    for (const scale of [1e300, 1.7e308 / 8, 1e-300, 1e-310]) {
      const m = columnMoments(matrixAt(scale));
      for (let j = 0; j < 4; j++) {
        expect(relErr(m.means[j]!, plain.means[j]! * scale)).toBeLessThan(scale < 1e-305 ? 1e-9 : 1e-14);
        expect(relErr(m.stds[j]!, plain.stds[j]! * scale)).toBeLessThan(scale < 1e-305 ? 1e-9 : 1e-14);
      }
    }
    // The variance of values near 1e300 is past float64: said as +Infinity, the std stays finite.
    expect(columnMoments(matrixAt(1e300)).variances[0]).toBe(Number.POSITIVE_INFINITY);
  });

  it('are bit for bit the plain two-pass sums on ordinary data', () => {
    const m = matrixAt(1);
    const { means, variances, stds } = columnMoments(m);
    for (let j = 0; j < 4; j++) {
      let mean = 0;
      for (let i = 0; i < 150; i++) mean += m.data[i * 4 + j]!;
      mean /= 150;
      let ss = 0;
      for (let i = 0; i < 150; i++) ss += (m.data[i * 4 + j]! - mean) ** 2;
      expect(means[j]).toBe(mean);
      expect(variances[j]).toBe(ss / 150);
      expect(stds[j]).toBe(Math.sqrt(ss / 150));
    }
  });

  it('z-normalizes series near 1e300 and subnormal ones as the plain series', () => {
    const series = Float64Array.from({ length: 40 }, (_, t) => Math.sin(t / 3) + 2);
    const plain = series.slice();
    zNormalizeSeries(plain, 2, 20, 1);
    for (const scale of [1e300, 1e-310]) {
      const scaled = Float64Array.from(series, (x) => x * scale);
      expect(stridedMoments(scaled, 0, 20, 1).std).toBeGreaterThan(0);
      zNormalizeSeries(scaled, 2, 20, 1);
      for (let i = 0; i < 40; i++) expect(Math.abs(scaled[i]! - plain[i]!)).toBeLessThan(1e-9);
    }
  });
});

describe('data near 1e300 and subnormal data', () => {
  it.each(['kmeans', 'hybrid'] as const)(
    'cluster as the plain data, same seed, same labels (%s)',
    async (method) => {
      const plain = await clusterer(method).fit(irisAt(1));
      for (const scale of [1e300, 1e-300, 1e-310]) {
        const result = await clusterer(method).fit(irisAt(scale));
        expect(result.labels).toEqual(plain.labels);
        expect(new Set(result.labels).size).toBe(3);
        expect(relErr(result.quality.inertia, plain.quality.inertia)).toBeLessThan(1e-6);
        expect(relErr(result.quality.silhouette!, plain.quality.silhouette!)).toBeLessThan(1e-6);
      }
    },
  );

  it('unstandardized, are refused with NUMERICAL where squared distances overflow or underflow', async () => {
    const big = await failure(clusterer('kmeans', false).fit(irisAt(1e300)));
    expect(big.code).toBe('NEUROCLUSTER_ERR_NUMERICAL');
    expect(big.message).toMatch(
      /not standardized.*past 1e\+120 in magnitude, where squared distances overflow/,
    );
    const tiny = await failure(clusterer('kmeans', false).fit(irisAt(1e-300)));
    expect(tiny.code).toBe('NEUROCLUSTER_ERR_NUMERICAL');
    expect(tiny.message).toMatch(/spread .* is below 1e-120, where squared distances underflow/);
    // Within range they cluster, the inertia in the data's own units.
    const plain = await clusterer('kmeans', false).fit(irisAt(1));
    const large = await clusterer('kmeans', false).fit(irisAt(1e100));
    expect(large.labels).toEqual(plain.labels);
    expect(relErr(large.quality.inertia, plain.quality.inertia * 1e200)).toBeLessThan(1e-9);
  });

  it('predicted far outside the training scale are refused, not labelled from infinities', async () => {
    const fitted = clusterer('kmeans');
    await fitted.fit(irisAt(1));
    const e = await failure(fitted.predict(irisAt(1e300)));
    expect(e.code).toBe('NEUROCLUSTER_ERR_NUMERICAL');
  });
});

describe('scale-free metrics at any finite scale', () => {
  const backend = new JsBackend();
  const options = { silhouetteExactMaxSamples: 1000, seed: 1 };

  it('Calinski-Harabasz, Davies-Bouldin and silhouette do not change with the scale', async () => {
    const plain = matrixAt(1);
    const ch = calinskiHarabasz(plain, truth, 3);
    const db = daviesBouldin(plain, truth, 3);
    const sil = await silhouetteScore(backend, plain, truth, options);
    for (const scale of [1e300, 1e200, 1e-200, 1e-300, 1e-310]) {
      const m = matrixAt(scale);
      expect(relErr(calinskiHarabasz(m, truth, 3), ch)).toBeLessThan(1e-9);
      expect(relErr(daviesBouldin(m, truth, 3), db)).toBeLessThan(1e-9);
      expect(relErr((await silhouetteScore(backend, m, truth, options))!, sil!)).toBeLessThan(1e-9);
    }
  });

  it('give the inertia in the data’s units, or NUMERICAL where it is past float64', async () => {
    const plain = await internalQuality(backend, matrixAt(1), truth, options);
    const large = await internalQuality(backend, matrixAt(1e150), truth, options);
    expect(relErr(large.inertia, plain.inertia * 1e300)).toBeLessThan(1e-9);
    expect(relErr(large.calinskiHarabasz!, plain.calinskiHarabasz!)).toBeLessThan(1e-9);
    for (const scale of [1e300, 1e-300]) {
      const e = await failure(internalQuality(backend, matrixAt(scale), truth, options));
      expect(e.code).toBe('NEUROCLUSTER_ERR_NUMERICAL');
      expect(e.message).toMatch(/inertia .* past float64/);
    }
  });
});

describe('the command line on data near 1e300', () => {
  function cli(args: string[]) {
    return runCli(args, { home: join(dir, 'home') });
  }
  const args = [
    '--k',
    '3',
    '--method',
    'kmeans',
    '--seed',
    '3',
    '--id-column',
    'id',
    '--label-column',
    'species',
    '--json',
  ];

  it('clusters 1e300-scaled and subnormal iris as plain iris', () => {
    const plain = JSON.parse(cli(['cluster', irisAt(1), ...args]).stdout);
    for (const scale of [1e300, 1e-310]) {
      const r = cli(['cluster', irisAt(scale), ...args]);
      expect(r.code).toBe(0);
      const out = JSON.parse(r.stdout);
      expect(out.labels).toEqual(plain.labels);
      expect(relErr(out.quality.inertia, plain.quality.inertia)).toBeLessThan(1e-6);
    }
  });

  it('refuses unstandardized 1e300 values with one NUMERICAL line, exit 1', () => {
    const r = cli(['cluster', irisAt(1e300), ...args, '--no-standardize']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^neurocluster: NEUROCLUSTER_ERR_NUMERICAL: [^\n]+\n$/);
  });
});
