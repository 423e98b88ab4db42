import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, tempDir } from './helpers.js';

const dir = tempDir();

describe('examples', () => {
  it('the synthetic employees file is exactly what its seeded script makes', () => {
    const out = join(dir, 'employees.csv');
    const r = spawnSync(process.execPath, [join(ROOT, 'dist/examples/make-employees.js'), out], {
      encoding: 'utf8',
    });
    expect(r.status).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe(
      readFileSync(join(ROOT, 'examples/employees-synthetic.csv'), 'utf8'),
    );
    expect(readFileSync(out, 'utf8').split('\n')[0]).toBe(
      'employee_id,red_energy,blue_energy,green_energy,yellow_energy',
    );
  });

  it('the synthetic series file is exactly what its seeded script makes', () => {
    const out = join(dir, 'cbf.csv');
    const r = spawnSync(process.execPath, [join(ROOT, 'dist/examples/make-series.js'), out], {
      encoding: 'utf8',
    });
    expect(r.status).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe(readFileSync(join(ROOT, 'examples/cbf-synthetic.csv'), 'utf8'));
    expect(readFileSync(out, 'utf8').split('\n').length).toBe(1 + 60 * 128 + 1);
  });
});
