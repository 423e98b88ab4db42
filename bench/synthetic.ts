/**
 * Seeded synthetic data sets with known classes, for the development pool of `bench:quality`
 * (docs/encoders.md): series families whose classes differ the way real series' do (by shape under
 * shifts and warps, by dynamics, in one channel among noise) and tabular sets K-means finds hard.
 *
 * `node dist/bench/synthetic.js --out DIR` writes them as the CSV files the CLI reads (a `label`
 * column, then `t0..` for a series, `d<c>_t<t>` for a multivariate one, `x0..` for a row). The
 * same seed gives the same files on every machine: every number comes from {@link Random}.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Random } from '../src/core/random.js';
import { seriesColumns } from '../src/data/dataset.js';

export interface SyntheticSet {
  readonly name: string;
  readonly kind: 'series' | 'tabular';
  readonly k: number;
  /** Values per step (1: univariate); a tabular set has one "step" of `dims` values. */
  readonly dims: number;
  readonly labels: readonly number[];
  /** One row per sample: steps x dims values, time-major (every channel at t0, then t1...). */
  readonly rows: readonly Float64Array[];
}

const uniform = (rng: Random, lo: number, hi: number) => lo + (hi - lo) * rng.float();
const between = (rng: Random, lo: number, hi: number) => lo + rng.int(hi - lo + 1);

/** `perClass` samples of each of `k` classes, in a seeded shuffled order. */
function classes(rng: Random, k: number, perClass: number): number[] {
  const labels = Array.from({ length: k * perClass }, (_, i) => i % k);
  for (let i = labels.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [labels[i], labels[j]] = [labels[j]!, labels[i]!];
  }
  return labels;
}

/**
 * Cylinder-Bell-Funnel (Saito 1994): a plateau, a ramp up or a ramp down over [a, b], with the
 * onset a ~ U{16..32}, the length b - a ~ U{32..96}, the height 6 + N(0, 1) and N(0, 1) noise.
 */
export function cylinderBellFunnel(seed: number, perClass = 100, length = 128): SyntheticSet {
  const rng = new Random(seed);
  const labels = classes(rng, 3, perClass);
  const rows = labels.map((c) => {
    const a = between(rng, 16, 32);
    const b = a + between(rng, 32, 96);
    const height = 6 + rng.normal();
    const row = new Float64Array(length);
    for (let t = 0; t < length; t++) {
      const inside = t >= a && t <= b;
      const shape = !inside ? 0 : c === 0 ? 1 : c === 1 ? (t - a) / (b - a) : (b - t) / (b - a);
      row[t] = height * shape + rng.normal();
    }
    return row;
  });
  return { name: 'synth-CBF', kind: 'series', k: 3, dims: 1, labels, rows };
}

/**
 * One pulse per series, a square, a triangle or one sine period, of width U{16..28} placed anywhere
 * in the series, with its height jittered and noise of 0.25 around it: the class is the shape,
 * wherever it falls, which Euclidean distance between raw series does not see.
 */
export function shiftedShapes(seed: number, perClass = 80, length = 100): SyntheticSet {
  const rng = new Random(seed);
  const labels = classes(rng, 3, perClass);
  const rows = labels.map((c) => {
    const width = between(rng, 16, 28);
    const start = between(rng, 0, length - width);
    const height = 1 + 0.2 * rng.normal();
    const row = new Float64Array(length);
    for (let t = 0; t < length; t++) {
      const u = (t - start) / width;
      const inside = u >= 0 && u <= 1;
      const shape = !inside ? 0 : c === 0 ? 1 : c === 1 ? 1 - Math.abs(2 * u - 1) : Math.sin(2 * Math.PI * u);
      row[t] = height * shape + 0.25 * rng.normal();
    }
    return row;
  });
  return { name: 'synth-shifted', kind: 'series', k: 3, dims: 1, labels, rows };
}

/** The three templates of {@link warpedShapes}: Gaussian bumps (centre, width, height) on [0, 1]. */
const TEMPLATES: readonly (readonly [number, number, number])[][] = [
  [
    [0.3, 0.06, 1],
    [0.65, 0.08, -0.6],
  ],
  [
    [0.3, 0.06, -0.6],
    [0.65, 0.08, 1],
  ],
  [
    [0.45, 0.12, 0.9],
    [0.8, 0.04, 0.5],
  ],
];

/**
 * A class template of two bumps read through a smooth random time warp (u + a u (1 - u), a uniform
 * in [-0.6, 0.6], which stays monotone), its amplitude jittered, with noise of 0.15: the same shape
 * arriving early or late, stretched or squeezed.
 */
export function warpedShapes(seed: number, perClass = 80, length = 128): SyntheticSet {
  const rng = new Random(seed);
  const labels = classes(rng, 3, perClass);
  const rows = labels.map((c) => {
    const a = uniform(rng, -0.6, 0.6);
    const scale = 1 + 0.15 * rng.normal();
    const row = new Float64Array(length);
    for (let t = 0; t < length; t++) {
      const u = t / (length - 1);
      const w = u + a * u * (1 - u);
      let v = 0;
      for (const [centre, width, height] of TEMPLATES[c]!)
        v += height * Math.exp(-0.5 * ((w - centre) / width) ** 2);
      row[t] = scale * v + 0.15 * rng.normal();
    }
    return row;
  });
  return { name: 'synth-warped', kind: 'series', k: 3, dims: 1, labels, rows };
}

/**
 * Classes by dynamics, not by shape: a Gaussian random walk, a mean-reverting AR(1) (phi 0.7) and a
 * walk with momentum (its steps AR(1), phi 0.7). Each starts anywhere; their levels say nothing,
 * their roughness and persistence say all.
 */
export function randomWalks(seed: number, perClass = 80, length = 128): SyntheticSet {
  const rng = new Random(seed);
  const labels = classes(rng, 3, perClass);
  const rows = labels.map((c) => {
    const row = new Float64Array(length);
    let x = 3 * rng.normal();
    let step = 0;
    for (let t = 0; t < length; t++) {
      const e = rng.normal();
      if (c === 0) x += e;
      else if (c === 1) x = 0.7 * x + e;
      else {
        step = 0.7 * step + e;
        x += step;
      }
      row[t] = x;
    }
    return row;
  });
  return { name: 'synth-walks', kind: 'series', k: 3, dims: 1, labels, rows };
}

/**
 * Four channels, two of them noise (AR(1), phi 0.8): the class shows as a bump in channel 0, in
 * channel 1, or in both at once, its onset jittered by up to 15 steps, over noise in every channel.
 */
export function noisyChannels(seed: number, perClass = 80, length = 100): SyntheticSet {
  const rng = new Random(seed);
  const dims = 4;
  const labels = classes(rng, 3, perClass);
  const rows = labels.map((c) => {
    const row = new Float64Array(length * dims);
    const onset = 30 + between(rng, -15, 15);
    const ar = [0, 0, 0, 0];
    for (let t = 0; t < length; t++) {
      const bump = Math.exp(-0.5 * ((t - onset) / 6) ** 2) * 2;
      for (let d = 0; d < dims; d++) {
        ar[d] = 0.8 * ar[d]! + 0.5 * rng.normal();
        const carries = (d === 0 && c !== 1) || (d === 1 && c !== 0);
        row[t * dims + d] = ar[d]! + (carries ? bump : 0);
      }
    }
    return row;
  });
  return { name: 'synth-channels', kind: 'series', k: 3, dims, labels, rows };
}

/** Gaussian blobs in `dims` dimensions, centres uniform in [-8, 8], each with its own spread. */
function blobs(rng: Random, k: number, perClass: number, dims: number, spreads: readonly number[]) {
  const centres = Array.from({ length: k }, () => Array.from({ length: dims }, () => uniform(rng, -8, 8)));
  const labels = classes(rng, k, perClass);
  const rows = labels.map((c) => Float64Array.from(centres[c]!, (m) => m + spreads[c]! * rng.normal()));
  return { labels, rows };
}

/** Three blobs stretched by one random linear map (scikit-learn's "anisotropic" example). */
export function anisotropicBlobs(seed: number, perClass = 100): SyntheticSet {
  const rng = new Random(seed);
  const { labels, rows } = blobs(rng, 3, perClass, 2, [1, 1, 1]);
  const map = [0.6, -0.64, -0.41, 0.85];
  const mapped = rows.map((r) =>
    Float64Array.of(r[0]! * map[0]! + r[1]! * map[2]!, r[0]! * map[1]! + r[1]! * map[3]!),
  );
  return { name: 'synth-aniso', kind: 'tabular', k: 3, dims: 2, labels, rows: mapped };
}

/** Three blobs of very different spreads (1, 2.5, 0.5). */
export function variedBlobs(seed: number, perClass = 100): SyntheticSet {
  const { labels, rows } = blobs(new Random(seed), 3, perClass, 2, [1, 2.5, 0.5]);
  return { name: 'synth-varied', kind: 'tabular', k: 3, dims: 2, labels, rows };
}

/** Four blobs in 4 informative dimensions, spread 2, with 8 columns of pure noise beside them. */
export function noisyColumns(seed: number, perClass = 75): SyntheticSet {
  const rng = new Random(seed);
  const { labels, rows } = blobs(rng, 4, perClass, 4, [2, 2, 2, 2]);
  const wide = rows.map((r) => {
    const out = new Float64Array(12);
    out.set(r);
    for (let j = 4; j < 12; j++) out[j] = 4 * rng.normal();
    return out;
  });
  return { name: 'synth-noisecols', kind: 'tabular', k: 4, dims: 12, labels, rows: wide };
}

/** Every synthetic set of the development pool, each from its own fixed seed. */
export function syntheticPool(): SyntheticSet[] {
  return [
    cylinderBellFunnel(1),
    shiftedShapes(2),
    warpedShapes(3),
    randomWalks(4),
    noisyChannels(5),
    anisotropicBlobs(6),
    variedBlobs(7),
    noisyColumns(8),
  ];
}

/** The CSV the CLI reads for a set: `label` first, then the series' or the row's columns. */
export function toCsv(set: SyntheticSet): string {
  const width = set.rows[0]!.length;
  const header =
    set.kind === 'tabular'
      ? Array.from({ length: width }, (_, j) => `x${j}`)
      : seriesColumns({ length: width / set.dims, dims: set.dims });
  const lines = [['label', ...header].join(',')];
  set.rows.forEach((row, i) => {
    lines.push(`${set.labels[i]},${Array.from(row, (v) => v.toPrecision(8)).join(',')}`);
  });
  return `${lines.join('\n')}\n`;
}

/** Writes every set of the pool into `dir` as `<name>.csv`; returns the paths by name. */
export function writePool(dir: string): Map<string, { path: string; set: SyntheticSet }> {
  mkdirSync(dir, { recursive: true });
  const out = new Map<string, { path: string; set: SyntheticSet }>();
  for (const set of syntheticPool()) {
    const path = join(dir, `${set.name}.csv`);
    writeFileSync(path, toCsv(set));
    out.set(set.name, { path, set });
  }
  return out;
}

if (process.argv[1] && resolve(process.argv[1]).endsWith('bench/synthetic.js')) {
  const { values } = parseArgs({ options: { out: { type: 'string', default: 'synthetic' } } });
  for (const [name, { path }] of writePool(resolve(values.out))) process.stdout.write(`${name}\t${path}\n`);
}
