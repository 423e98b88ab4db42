/**
 * `encoders.consensus: co-association`: every member of `encoders.members` is fitted and clustered
 * on its own (the first one exactly as a one-member fit), and K-means clusters their labels,
 * one-hot, which is clustering how often members put two samples together; the same over chunks,
 * whatever the row order, and a saved model labels new series through every member.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cylinderBellFunnel, toCsv } from '../../bench/synthetic.js';
import { NeuromorphicClusterer } from '../../src/clusterer.js';
import { settleEncoders } from '../../src/config/auto.js';
import { resolveConfig } from '../../src/config/load.js';
import type { ConfigOverrides } from '../../src/config/schema.js';
import { featureWidths } from '../../src/encoders/pipeline.js';
import { createLogger } from '../../src/observability/logger.js';
import { tempDir } from '../helpers.js';

const quiet = createLogger({ level: 'silent' });
const dir = tempDir();
const set = cylinderBellFunnel(4, 12, 64);
const SERIES = join(dir, 'cbf.csv');
writeFileSync(SERIES, toCsv(set));
const K = 3;
const COASSOC: ConfigOverrides = { encoders: { members: 3, consensus: 'co-association' } };

function clusterer(config: ConfigOverrides = {}) {
  return new NeuromorphicClusterer({
    method: 'hybrid',
    nClusters: K,
    seed: 3,
    logger: quiet,
    config: { ...config, data: { labelColumn: 'label', ...config.data } },
  });
}

describe('a co-association consensus', () => {
  it('clusters each member alone, the first as a one-member fit, and K-means clusters their votes', async () => {
    const one = await clusterer().fit(SERIES);
    const votes = await clusterer(COASSOC).fit(SERIES);
    const { rows, cols, data } = votes.features;
    expect([rows, cols]).toEqual([one.labels.length, 3 * K]);
    const members: number[][] = [[], [], []];
    for (let i = 0; i < rows; i++) {
      for (let m = 0; m < 3; m++) {
        const block = Array.from(data.subarray(i * cols + m * K, i * cols + (m + 1) * K));
        // One vote per member: a one-hot label.
        expect(block.filter((v) => v === 1)).toHaveLength(1);
        expect(block.filter((v) => v !== 0 && v !== 1)).toHaveLength(0);
        members[m]!.push(block.indexOf(1));
      }
    }
    expect(members[0]).toEqual(Array.from(one.labels));
    expect(votes.external!.ari).toBeGreaterThan(0.3);
  });

  it('gives the same labels whatever the row order, and a saved model predicts them', async () => {
    const fitted = clusterer(COASSOC);
    const a = await fitted.fit(SERIES);
    const reversed = join(dir, 'cbf-reversed.csv');
    writeFileSync(
      reversed,
      toCsv({ ...set, rows: [...set.rows].reverse(), labels: [...set.labels].reverse() }),
    );
    const b = await clusterer(COASSOC).fit(reversed);
    expect(Array.from(b.labels).reverse()).toEqual(Array.from(a.labels));
    const model = join(dir, 'coassoc.model');
    await fitted.save(model);
    const loaded = await NeuromorphicClusterer.load(model, { logger: quiet, data: { labelColumn: 'label' } });
    expect(Array.from(await loaded.predict(SERIES))).toEqual(Array.from(a.labels));
  });

  it('runs over chunks of a file as in memory', async () => {
    const whole = await clusterer(COASSOC).fit(SERIES);
    const chunked = await clusterer({ ...COASSOC, stream: { mode: 'on', chunkRows: 10 } }).fit(SERIES);
    expect(chunked.streamed).toBeDefined();
    expect(chunked.external!.ari).toBeCloseTo(whole.external!.ari, 6);
  });

  it('fitted on a sample of a larger file, labels every chunk as its saved model does', async () => {
    const big = join(dir, 'cbf-big.csv');
    writeFileSync(big, toCsv(cylinderBellFunnel(6, 367, 48)));
    const config: ConfigOverrides = {
      encoders: { members: 2, consensus: 'co-association', esn: { units: 20 } },
      stream: { mode: 'on', sampleRows: 1_000, chunkRows: 400 },
    };
    const fitted = new NeuromorphicClusterer({
      method: 'esn',
      nClusters: K,
      seed: 1,
      logger: quiet,
      config: { ...config, data: { labelColumn: 'label' } },
    });
    const result = await fitted.fit(big);
    expect(result.streamed?.sampleRows).toBe(1_000);
    expect(result.labels).toHaveLength(1_101);
    const model = join(dir, 'coassoc-big.model');
    await fitted.save(model);
    const loaded = await NeuromorphicClusterer.load(model, { logger: quiet, data: { labelColumn: 'label' } });
    expect(Array.from(await loaded.predict(big))).toEqual(Array.from(result.labels));
  });

  it("takes a seed at the top of the range: each member's K-means seed wraps", async () => {
    const fit = await new NeuromorphicClusterer({
      method: 'esn',
      nClusters: K,
      seed: Number.MAX_SAFE_INTEGER,
      logger: quiet,
      config: { ...COASSOC, data: { labelColumn: 'label' } },
    }).fit(SERIES);
    expect(fit.fallback).toBeUndefined();
    expect(fit.method).toBe('esn');
  });

  it("is refused with k-anonymity, whose merge would not reach the members' own clusters", () => {
    expect(() => resolveConfig({ ...COASSOC, privacy: { minClusterSize: 5 } })).toThrow(
      /encoders.consensus: co-association keeps every member's own clusters/,
    );
    expect(() => resolveConfig({ encoders: { members: 3 }, privacy: { minClusterSize: 5 } })).not.toThrow();
  });

  it('plans the width of the votes, members x k, for the memory estimate', () => {
    const settled = (c: ConfigOverrides, method: 'hybrid' | 'esn') =>
      settleEncoders(resolveConfig(c).encoders, method, true, false);
    const encoders = settled(COASSOC, 'hybrid');
    // hybrid: each member's PCA keeps 10 components; the votes are 3 x 8 wide.
    expect(featureWidths('hybrid', encoders, 1, 64, true, 8).final).toBe(3 * 8);
    expect(featureWidths('hybrid', encoders, 1, 64, true, 2).final).toBe(10);
    const stacked = settled({ encoders: { members: 3 } }, 'esn');
    const single = settled({}, 'esn');
    const inputCols = 64;
    const perMember = featureWidths('esn', single, 1, inputCols, true).raw - inputCols;
    expect(featureWidths('esn', stacked, 1, inputCols, true).raw).toBe(inputCols + 3 * perMember);
    expect(featureWidths('esn', encoders, 1, inputCols, true).raw).toBe(inputCols + perMember);
  });
});
