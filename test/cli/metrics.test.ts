/** `neurocluster metrics`: the families with samples, a note on the empty ones, a run's file with --from. */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { familiesWithSamples } from '../../src/cli/commands/metrics.js';
import { cliScratch, IRIS } from './scratch.js';

const { dir, cli } = cliScratch();

describe('neurocluster metrics', () => {
  it('keeps the families that have samples', () => {
    const text =
      '# HELP a A.\n# TYPE a counter\n\n# HELP b B.\n# TYPE b gauge\nb 1\n\n# HELP c C.\n# TYPE c counter\nc{x="1"} 2\n';
    expect(familiesWithSamples(text)).toEqual({
      kept: '# HELP b B.\n# TYPE b gauge\nb 1\n\n# HELP c C.\n# TYPE c counter\nc{x="1"} 2\n',
      empty: 1,
      total: 3,
    });
  });

  it("prints a fresh process's families with samples, says how many are empty, and --all prints them all", () => {
    const fresh = cli(['metrics']);
    expect(fresh.code).toBe(0);
    expect(fresh.stdout).not.toContain('# HELP neurocluster_operations_total');
    expect(fresh.stdout).toContain('neurocluster_samples_processed_total 0');
    expect(fresh.stderr).toMatch(
      /^neurocluster: warning: \d+ of \d+ metric families have no samples yet: .*--from <file\.prom>/,
    );
    expect(cli(['metrics', '--all']).stdout).toContain('# HELP neurocluster_operations_total');
  });

  it('shows the metrics a run wrote with --metrics-out', () => {
    const prom = join(dir, 'run.prom');
    expect(cli(['--metrics-out', prom, 'cluster', IRIS, '-k', '3', '--json']).code).toBe(0);
    const shown = cli(['metrics', '--from', prom]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(
      /^neurocluster_operations_total\{method="kmeans",.*outcome="succeeded"\} 1$/m,
    );
    expect(cli(['metrics', '--from', join(dir, 'missing.prom')]).code).toBe(2);
  });
});
