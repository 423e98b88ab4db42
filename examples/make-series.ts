/**
 * Writes examples/cbf-synthetic.csv: SYNTHETIC time series in long format (one row per step:
 * `series, step, value, shape`), 20 of each of the Cylinder-Bell-Funnel shapes of Saito (1994),
 * 128 steps, made by the seeded generator of the quality bench (bench/synthetic.ts). Seeded, so
 * the file is the same on every run: `npm run build && npm run examples:series`.
 */
import { writeFileSync } from 'node:fs';
import { cylinderBellFunnel } from '../bench/synthetic.js';

const SHAPES = ['cylinder', 'bell', 'funnel'] as const;
const set = cylinderBellFunnel(20261206, 20, 128);
const lines = ['series,step,value,shape'];
set.rows.forEach((row, i) => {
  const name = `S${String(i + 1).padStart(3, '0')}`;
  row.forEach((v, t) => {
    lines.push(`${name},${t},${v.toFixed(3)},${SHAPES[set.labels[i]!]}`);
  });
});
// Relative to the package root, where npm runs scripts; a path argument writes elsewhere.
const out = process.argv[2] ?? 'examples/cbf-synthetic.csv';
writeFileSync(out, `${lines.join('\n')}\n`);
