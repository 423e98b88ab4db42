/**
 * Writes examples/employees-synthetic.csv: SYNTHETIC employees with four colour energies
 * (red, blue, green, yellow; 0 to 100), the domain of the system neurocluster replaces.
 *
 * Each made-up employee leans to one of four archetypes: a dominant colour high, its opposite on
 * the colour wheel (red-green, blue-yellow) low, the other two middling. Seeded, so the file is
 * the same on every run: `npm run build && npm run examples:employees`.
 */
import { writeFileSync } from 'node:fs';
import { Random } from '../src/core/random.js';

const COLOURS = ['red', 'blue', 'green', 'yellow'] as const;
const OPPOSITE = { red: 'green', green: 'red', blue: 'yellow', yellow: 'blue' } as const;
const N = 400;
const SEED = 20261127;

const rng = new Random(SEED);
const clip = (v: number) => Math.min(100, Math.max(0, v));
const lines = ['employee_id,red_energy,blue_energy,green_energy,yellow_energy'];
for (let i = 0; i < N; i++) {
  const dominant = COLOURS[rng.int(COLOURS.length)]!;
  const energies = COLOURS.map((c) => {
    const centre = c === dominant ? 75 : c === OPPOSITE[dominant] ? 25 : 48;
    return clip(centre + 9 * rng.normal()).toFixed(1);
  });
  lines.push([`E${String(i + 1).padStart(4, '0')}`, ...energies].join(','));
}
// Relative to the package root, where npm runs scripts; a path argument writes elsewhere.
const out = process.argv[2] ?? 'examples/employees-synthetic.csv';
writeFileSync(out, `${lines.join('\n')}\n`);
process.stdout.write(`wrote ${N} synthetic employees to ${out}\n`);
