/**
 * `npm run demo`: clusters the shipped examples with the `neurocluster` command and writes the
 * result JSON, the labels and an SVG plot of each under examples/out/.
 */
import { mkdirSync } from 'node:fs';
import { main } from '../src/cli/main.js';

const out = 'examples/out';
mkdirSync(out, { recursive: true });

const runs = [
  ['examples/iris.csv', '--k', '3', '--label-column', 'species', '--seed', '0'],
  ['examples/employees-synthetic.csv', '--k', '4', '--id-column', 'employee_id', '--seed', '0'],
  [
    'examples/cbf-synthetic.csv',
    ...[
      '--k',
      '3',
      '--series-id',
      'series',
      '--time-column',
      'step',
      '--label-column',
      'shape',
      '--seed',
      '0',
    ],
  ],
];
let status = 0;
for (const [file, ...flags] of runs) {
  const name = file!.replace(/^.*\//, '').replace(/\.csv$/, '');
  const args = ['cluster', file!, ...flags];
  args.push('--out', `${out}/${name}.result.json`, '--labels-out', `${out}/${name}.labels.csv`);
  args.push('--plot', `${out}/${name}.svg`);
  status ||= await main(['node', 'neurocluster', ...args]);
  process.stdout.write('\n');
}
process.exitCode = status;
