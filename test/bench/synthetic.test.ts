/**
 * The synthetic families of the development pool: seeded (the same files every time), balanced,
 * each class what its generator says it is, and written in the layouts the CLI reads.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { leaveOneOut, type QualityRow } from '../../bench/quality.js';
import {
  cylinderBellFunnel,
  noisyChannels,
  randomWalks,
  syntheticPool,
  toCsv,
  writePool,
} from '../../bench/synthetic.js';
import { loadDataset } from '../../src/data/load.js';

const dir = mkdtempSync(join(tmpdir(), 'neurocluster-synthetic-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('synthetic development sets', () => {
  it('are the same for the same seed and differ for another', () => {
    expect(toCsv(cylinderBellFunnel(1))).toBe(toCsv(cylinderBellFunnel(1)));
    expect(toCsv(cylinderBellFunnel(1))).not.toBe(toCsv(cylinderBellFunnel(2)));
  });

  it.each(syntheticPool().map((s) => [s.name, s] as const))(
    '%s has k balanced classes and finite rows',
    (_, set) => {
      const counts = new Array<number>(set.k).fill(0);
      for (const c of set.labels) counts[c]! += 1;
      expect(new Set(counts).size).toBe(1);
      const width = set.rows[0]!.length;
      for (const row of set.rows) {
        expect(row.length).toBe(width);
        expect(row.every(Number.isFinite)).toBe(true);
      }
    },
  );

  it('Cylinder-Bell-Funnel: a plateau, a ramp up and a ramp down', () => {
    const set = cylinderBellFunnel(1, 200, 128);
    // The mean least-squares slope, over a class, of each series where it stands above the noise
    // (the event): about 0 for the plateau, up for the bell, down for the funnel.
    const slope = (c: number) => {
      let sum = 0;
      let n = 0;
      set.rows.forEach((row, i) => {
        if (set.labels[i] !== c) return;
        const ts = [...row.keys()].filter((t) => row[t]! > 2);
        const mt = ts.reduce((s, t) => s + t, 0) / ts.length;
        const mv = ts.reduce((s, t) => s + row[t]!, 0) / ts.length;
        const cov = ts.reduce((s, t) => s + (t - mt) * (row[t]! - mv), 0);
        const vt = ts.reduce((s, t) => s + (t - mt) ** 2, 0);
        sum += cov / vt;
        n += 1;
      });
      return sum / n;
    };
    expect(Math.abs(slope(0))).toBeLessThan(0.01);
    expect(slope(1)).toBeGreaterThan(0.04);
    expect(slope(2)).toBeLessThan(-0.04);
  });

  it('random walks: the mean-reverting class stays near zero, the walks wander', () => {
    const set = randomWalks(4, 100, 128);
    const spread = (c: number) => {
      const ends = set.rows.filter((_, i) => set.labels[i] === c).map((r) => r[127]! - r[0]!);
      return Math.sqrt(ends.reduce((s, v) => s + v * v, 0) / ends.length);
    };
    expect(spread(1)).toBeLessThan(spread(0));
    expect(spread(0)).toBeLessThan(spread(2));
  });

  it('are read by the loader as the series and rows they are', async () => {
    const written = writePool(dir);
    const channels = await loadDataset(written.get('synth-channels')!.path, {
      labelColumn: 'label',
      nanPolicy: 'error',
    });
    expect(channels.series).toEqual({ dims: 4, length: 100 });
    expect(channels.n).toBe(240);
    const cbf = await loadDataset(written.get('synth-CBF')!.path, {
      labelColumn: 'label',
      nanPolicy: 'error',
    });
    expect(cbf.series).toEqual({ dims: 1, length: 128 });
    const tab = await loadDataset(written.get('synth-noisecols')!.path, {
      labelColumn: 'label',
      nanPolicy: 'error',
    });
    expect(tab.series).toBeUndefined();
    expect(tab.width).toBe(12);
    expect(noisyChannels(5).rows[0]!.length).toBe(400);
  });
});

describe('leave-one-dataset-out', () => {
  const row = (candidate: string, dataset: string, ari: number): QualityRow => ({
    dataset,
    method: 'hybrid',
    candidate,
    seeds: [0],
    ari,
    nmi: 0,
    spread: 0,
    seconds: 0,
  });

  it('scores each set with the candidate chosen on the others', () => {
    // b wins on a and b, so it is chosen for c, where it is worse; a is chosen for a and b.
    const rows = [
      row('a', 'x', 0.5),
      row('a', 'y', 0.5),
      row('a', 'z', 0.8),
      row('b', 'x', 0.9),
      row('b', 'y', 0.9),
      row('b', 'z', 0.1),
    ];
    const lodo = leaveOneOut(rows, ['a', 'b'], ['x', 'y', 'z']);
    expect(lodo.folds).toEqual([
      { heldOut: 'x', chosen: 'a', ari: 0.5 },
      { heldOut: 'y', chosen: 'a', ari: 0.5 },
      { heldOut: 'z', chosen: 'b', ari: 0.1 },
    ]);
    expect(lodo.mean).toBeCloseTo((0.5 + 0.5 + 0.1) / 3, 12);
    expect(lodo.inSample).toEqual({ chosen: 'b', mean: expect.closeTo(1.9 / 3, 12) });
  });

  it('gives ties to the earlier candidate', () => {
    const rows = [row('a', 'x', 0.5), row('a', 'y', 0.5), row('b', 'x', 0.5), row('b', 'y', 0.5)];
    expect(leaveOneOut(rows, ['a', 'b'], ['x', 'y']).folds.map((f) => f.chosen)).toEqual(['a', 'a']);
    expect(leaveOneOut(rows, ['b', 'a'], ['x', 'y']).inSample.chosen).toBe('b');
  });
});
