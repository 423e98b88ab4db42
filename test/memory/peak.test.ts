/**
 * The memory estimate a job is admitted by (src/observability/resources.ts) against the peak a
 * real fit reaches (issue 18, item 9): each shape runs in a child process (node --expose-gc) that
 * measures the resident memory the fit added; the estimate must cover it, and not by more than 4x.
 * Tall (plain K-means on 200,000 rows), wide (hybrid on 20 rows of 8,000 columns: the PCA takes the
 * Gram path), series (the ESN model space, its chunk of every step's state).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, tempDir } from '../helpers.js';

const home = join(tempDir(), 'home');
const CHILD = join(ROOT, 'test/memory/peak-child.mjs');

const shapes = {
  tall: { method: 'kmeans', rows: 200_000, cols: 10, k: 4, config: { kmeans: { nInit: 1 } } },
  wide: { method: 'hybrid', rows: 20, cols: 8000, k: 2 },
  series: {
    method: 'esn',
    rows: 200,
    k: 3,
    series: { length: 200, dims: 3 },
    config: { encoders: { esn: { readout: 'model-space' } } },
  },
};

describe('the memory estimate against a measured peak', () => {
  it.each(Object.entries(shapes))('covers the peak of a %s fit, within 4x', (_, spec) => {
    const r = spawnSync(process.execPath, ['--expose-gc', CHILD, JSON.stringify(spec)], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 90_000,
      env: { ...process.env, NEUROCLUSTER_HOME: home },
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const { estimate, increase } = JSON.parse(r.stdout) as { estimate: number; increase: number };
    expect(increase).toBeGreaterThan(0);
    expect(estimate).toBeGreaterThanOrEqual(increase);
    expect(estimate).toBeLessThanOrEqual(4 * increase);
  });
});
