import { describe, expect, it } from 'vitest';
import { Random } from '../../src/core/random.js';
import {
  gridShape,
  liquidWiring,
  reservoirMatrix,
  spectralRadius,
  toCsr,
} from '../../src/encoders/weights.js';
import { relErr, sklearn } from '../helpers.js';

describe('reservoir weights', () => {
  it.each(sklearn.spectralRadius.map((c) => [c.size, c] as const))(
    'spectral radius of a %i x %i matrix agrees with NumPy',
    (_n, c) => {
      const radius = spectralRadius({ rows: c.size, cols: c.size, data: Float64Array.from(c.data) });
      expect(relErr(radius, c.radius)).toBeLessThan(1e-9);
    },
  );

  it('scales the recurrent matrix to the requested spectral radius, at the requested connectivity', () => {
    const w = reservoirMatrix(new Random(1), 200, 0.1, 0.95);
    expect(spectralRadius(w)).toBeCloseTo(0.95, 9);
    const density = toCsr(w).values.length / (200 * 200);
    expect(density).toBeGreaterThan(0.08);
    expect(density).toBeLessThan(0.12);
  });
});

describe('the liquid', () => {
  const neurons = 64;
  const liquid = liquidWiring(new Random(2), neurons, {
    excitatory: 0.8,
    connectivity: 0.3,
    lambda: 2,
    weightScale: 1,
  });
  const w = liquid.weights.data;

  it('lies on a 4 x 4 x 4 grid with 20% inhibitory neurons', () => {
    expect(gridShape(64)).toEqual([4, 4, 4]);
    expect(liquid.inhibitory.reduce((s, v) => s + v, 0)).toBe(Math.round(neurons * 0.2));
  });

  it('signs every synapse by its presynaptic neuron, and is sparse without self-connections', () => {
    let nonZero = 0;
    for (let a = 0; a < neurons; a++) {
      expect(w[a * neurons + a]).toBe(0);
      for (let b = 0; b < neurons; b++) {
        const v = w[a * neurons + b]!;
        if (v === 0) continue;
        nonZero++;
        expect(Math.sign(v)).toBe(liquid.inhibitory[a] ? -1 : 1);
      }
    }
    expect(nonZero / (neurons * neurons)).toBeLessThan(0.3);
    expect(nonZero).toBeGreaterThan(0);
  });

  it('connects near neighbours more often than distant ones', () => {
    const pos = (i: number) => [i % 4, Math.floor(i / 4) % 4, Math.floor(i / 16)];
    const byDistance = new Map<number, [number, number]>();
    for (let a = 0; a < neurons; a++) {
      for (let b = 0; b < neurons; b++) {
        if (a === b) continue;
        const [pa, pb] = [pos(a), pos(b)];
        const d2 = (pa[0]! - pb[0]!) ** 2 + (pa[1]! - pb[1]!) ** 2 + (pa[2]! - pb[2]!) ** 2;
        const entry = byDistance.get(d2) ?? [0, 0];
        entry[0] += w[a * neurons + b] !== 0 ? 1 : 0;
        entry[1] += 1;
        byDistance.set(d2, entry);
      }
    }
    const rate = (d2: number) => byDistance.get(d2)![0] / byDistance.get(d2)![1];
    expect(rate(1)).toBeGreaterThan(rate(4));
    expect(rate(4)).toBeGreaterThan(rate(9));
  });
});
