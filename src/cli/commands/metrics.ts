/**
 * `neurocluster metrics`: the registry now, in the text exposition format (the breakers of
 * $NEUROCLUSTER_HOME, this process's resources and health score), the families with samples only
 * unless `--all`; `--from <file.prom>` shows a run's metrics as `--metrics-out` wrote them;
 * `--markdown` lists every family with its type, labels and meaning (the table in
 * docs/observability.md is this output).
 */
import { Command } from 'commander';
import { defaultRuntime } from '../../runtime/runtime.js';
import { readWithinLimits } from '../../security/secure-load.js';
import { cliConfig } from '../context.js';
import { warn } from '../output.js';

export function metricsCommand(): Command {
  return new Command('metrics')
    .option('--markdown', 'list every metric family as a Markdown table')
    .option('--process', "include prom-client's process metrics (process_*, nodejs_*)")
    .option('--all', 'print every family, those with no samples yet too')
    .option('--from <file.prom>', "show the metrics a run wrote with --metrics-out instead of this process's")
    .action(
      async (
        opts: { markdown?: boolean; process?: boolean; all?: boolean; from?: string },
        command: Command,
      ) => {
        const runtime = defaultRuntime();
        const { metrics } = runtime;
        if (opts.markdown) {
          process.stdout.write(await metrics.markdown());
          return;
        }
        // The sources the scrape-time gauges read, as a clusterer of this configuration has them.
        const config = await cliConfig(command, []);
        let text: string;
        if (opts.from) {
          text = (await readWithinLimits(opts.from, config.security)).toString('utf8');
        } else {
          runtime.breakers(config);
          runtime.resourceMonitor(config);
          runtime.errorTracker(config);
          if (opts.process) metrics.withProcessMetrics();
          text = await metrics.text();
        }
        if (opts.all) {
          process.stdout.write(text);
          return;
        }
        const { kept, empty, total } = familiesWithSamples(text);
        process.stdout.write(kept);
        if (empty > 0) {
          warn(
            `${empty} of ${total} metric families have no samples ${opts.from ? 'in that file' : "yet: most fill during a run (cluster --metrics-out <file.prom> writes a run's, and --from <file.prom> shows them)"}; --all prints them too`,
          );
        }
      },
    );
}

/** The families of an exposition text that have samples, and how many had none. */
export function familiesWithSamples(text: string): { kept: string; empty: number; total: number } {
  const families: string[][] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('# HELP ') || families.length === 0) families.push([]);
    if (line.trim() !== '') families.at(-1)!.push(line);
  }
  const withSamples = families.filter((f) => f.some((l) => !l.startsWith('#')));
  const total = families.filter((f) => f.length > 0).length;
  const kept = withSamples.map((f) => `${f.join('\n')}\n`).join('\n');
  return { kept, empty: total - withSamples.length, total };
}
