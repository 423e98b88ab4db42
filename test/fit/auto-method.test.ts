/**
 * `engine.method: auto`, the default: K-means for rows, hybrid for series (chosen by
 * leave-one-dataset-out, docs/encoders.md), settled once the input's kind is known, in memory and
 * over chunks alike; what ran is what the result, the model file and the operation record say.
 * And `encoders.members`: several seeded copies of the encoders stacked, the first one the
 * single-member pipeline itself.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cylinderBellFunnel, toCsv } from '../../bench/synthetic.js';
import { NeuromorphicClusterer } from '../../src/clusterer.js';
import { settleEncoders } from '../../src/config/auto.js';
import { resolveConfig } from '../../src/config/load.js';
import type { ConfigOverrides, Method } from '../../src/config/schema.js';
import { createPipeline } from '../../src/encoders/pipeline.js';
import { createLogger } from '../../src/observability/logger.js';
import { OperationTracker } from '../../src/observability/operations.js';
import { ROOT, tempDir } from '../helpers.js';

const IRIS = join(ROOT, 'examples/iris.csv');
const quiet = createLogger({ level: 'silent' });
const dir = tempDir();
const SERIES = join(dir, 'cbf.csv');
writeFileSync(SERIES, toCsv(cylinderBellFunnel(11, 12, 64)));

function clusterer(method: Method | undefined, config: ConfigOverrides = {}, operations?: OperationTracker) {
  return new NeuromorphicClusterer({
    ...(method ? { method } : {}),
    nClusters: 3,
    seed: 2,
    logger: quiet,
    config: { ...config, data: { labelColumn: 'label', ...config.data } },
    ...(operations ? { operations } : {}),
  });
}

describe('engine.method auto', () => {
  it('is the default', () => {
    expect(resolveConfig({}).engine.method).toBe('auto');
  });

  it('runs K-means on rows: the labels of --method kmeans', async () => {
    const operations = new OperationTracker();
    const auto = await clusterer(undefined, { data: { labelColumn: 'species' } }, operations).fit(IRIS);
    const kmeans = await clusterer('kmeans', { data: { labelColumn: 'species' } }).fit(IRIS);
    expect(auto.method).toBe('kmeans');
    expect(auto.parameters.engine.method).toBe('kmeans');
    expect(Array.from(auto.labels)).toEqual(Array.from(kmeans.labels));
    expect(operations.recent()[0]!.method).toBe('kmeans');
  });

  it('runs hybrid on series: the labels of --method hybrid, and a model that predicts with it', async () => {
    const auto = clusterer(undefined);
    const fitted = await auto.fit(SERIES);
    const hybrid = await clusterer('hybrid').fit(SERIES);
    expect(fitted.method).toBe('hybrid');
    expect(Array.from(fitted.labels)).toEqual(Array.from(hybrid.labels));
    const model = join(dir, 'auto.model');
    await auto.save(model);
    const loaded = await NeuromorphicClusterer.load(model, { logger: quiet, data: { labelColumn: 'label' } });
    expect(Array.from(await loaded.predict(SERIES))).toEqual(Array.from(fitted.labels));
  });

  it('settles the same way over chunks of a file', async () => {
    const streamed = await clusterer(undefined, { stream: { mode: 'on', chunkRows: 10 } }).fit(SERIES);
    expect(streamed.method).toBe('hybrid');
    expect(streamed.streamed).toBeDefined();
    const rows = await clusterer(undefined, {
      stream: { mode: 'on', chunkRows: 50 },
      data: { labelColumn: 'species' },
    }).fit(IRIS);
    expect(rows.method).toBe('kmeans');
  });

  it('is K-means for a private fit, series or not, where hybrid is refused', async () => {
    process.env.NEUROCLUSTER_HOME = tempDir();
    const privacy = { epsilon: 1, bounds: '-20:20', dataset: 'cbf' };
    const fitted = await clusterer(undefined, { privacy }).fit(SERIES);
    expect(fitted.method).toBe('kmeans');
    await expect(clusterer('hybrid', { privacy }).fit(SERIES)).rejects.toThrow(/kmeans method only/);
  });
});

describe('the consensus settings, auto', () => {
  const settled = (method: Method, series: boolean, overrides: ConfigOverrides = {}, kAnonymous = false) => {
    const { members, consensus, hybrid } = settleEncoders(
      resolveConfig(overrides).encoders,
      method,
      series,
      kAnonymous,
    );
    return { members, consensus, inputWeight: hybrid.inputWeight };
  };

  it('are three members voting, the input at half a share, for hybrid on a series only', () => {
    expect(resolveConfig({}).encoders.members).toBe('auto');
    expect(settled('hybrid', true)).toEqual({ members: 3, consensus: 'co-association', inputWeight: 0.5 });
    expect(settled('hybrid', false)).toEqual({ members: 1, consensus: 'stack', inputWeight: 1 });
    for (const method of ['esn', 'snn', 'lsm'] as const)
      expect(settled(method, true)).toEqual({ members: 1, consensus: 'stack', inputWeight: 1 });
  });

  it('leave what is set alone, and give the input half a share only to a vote on a series', () => {
    expect(settled('hybrid', true, { encoders: { members: 1 } })).toEqual({
      members: 1,
      consensus: 'co-association',
      inputWeight: 1,
    });
    expect(settled('hybrid', true, { encoders: { consensus: 'stack' } })).toEqual({
      members: 3,
      consensus: 'stack',
      inputWeight: 1,
    });
    expect(settled('hybrid', true, { encoders: { hybrid: { inputWeight: 2 } } }).inputWeight).toBe(2);
    expect(settled('esn', true, { encoders: { members: 4, consensus: 'co-association' } })).toEqual({
      members: 4,
      consensus: 'co-association',
      inputWeight: 1,
    });
    expect(
      settled('hybrid', false, { encoders: { members: 4, consensus: 'co-association' } }).inputWeight,
    ).toBe(1);
  });

  it('keep one member, stacked, beside k-anonymity, whose merge the voters would not follow', () => {
    expect(settled('hybrid', true, {}, true)).toEqual({ members: 1, consensus: 'stack', inputWeight: 1 });
    expect(settled('hybrid', true, { encoders: { members: 3 } }, true).consensus).toBe('stack');
  });

  it('make the default fit of a series the vote of three, as when set by hand', async () => {
    const byDefault = await clusterer(undefined).fit(SERIES);
    const byHand = await clusterer('hybrid', {
      encoders: { members: 3, consensus: 'co-association', hybrid: { inputWeight: 0.5 } },
    }).fit(SERIES);
    expect(byDefault.parameters.encoders).toMatchObject({ members: 3, consensus: 'co-association' });
    expect(byDefault.parameters.encoders.hybrid.inputWeight).toBe(0.5);
    // The votes, one-hot: three members of three clusters each.
    expect(byDefault.features.cols).toBe(9);
    expect(Array.from(byDefault.labels)).toEqual(Array.from(byHand.labels));
    const rows = await clusterer('hybrid', { data: { labelColumn: 'species' } }).fit(IRIS);
    expect(rows.parameters.encoders).toMatchObject({ members: 1, consensus: 'stack' });
  });
});

describe('encoders.members', () => {
  const config = (members: number) =>
    settleEncoders(resolveConfig({ encoders: { members } }).encoders, 'hybrid', true, false);

  it('keeps the one-member pipeline as its first member and gives the others weights of their own', () => {
    const one = createPipeline('hybrid', config(1), 1, 5);
    const three = createPipeline('hybrid', config(3), 1, 5);
    expect(three.esn).toEqual(one.esn);
    expect(three.snn).toEqual(one.snn);
    expect(three.lsm).toEqual(one.lsm);
    expect(one.moreMembers).toBeUndefined();
    expect(three.moreMembers).toHaveLength(2);
    const weights = [three.esn!, ...three.moreMembers!.map((m) => m.esn!)].map((e) =>
      Array.from(e.inputWeights.data),
    );
    expect(new Set(weights.map((w) => w.join())).size).toBe(3);
    // Not the first member of a neighbouring seed: seeds stay independent of one another.
    const next = createPipeline('hybrid', config(1), 1, 6);
    expect(weights.map((w) => w.join())).not.toContain(Array.from(next.esn!.inputWeights.data).join());
  });

  it('stacks every member before K-means, and a saved model predicts its own labels', async () => {
    const one = await clusterer('esn', { encoders: { members: 1 } }).fit(SERIES);
    const c = clusterer('esn', { encoders: { members: 3 } });
    const three = await c.fit(SERIES);
    expect(three.features.cols - one.features.cols).toBe(2 * (one.features.cols - 64));
    const model = join(dir, 'members.model');
    await c.save(model);
    const loaded = await NeuromorphicClusterer.load(model, { logger: quiet, data: { labelColumn: 'label' } });
    expect(Array.from(await loaded.predict(SERIES))).toEqual(Array.from(three.labels));
  });
});
