/**
 * `neurocluster metrics`: the registry now, in the text exposition format (the breakers of
 * $NEUROCLUSTER_HOME, this process's resources and health score); `--markdown` lists every
 * family with its type, labels and meaning (the table in docs/observability.md is this output).
 */
import { Command } from 'commander';
import { defaultRuntime } from '../../runtime/runtime.js';
import { cliConfig } from '../context.js';

export function metricsCommand(): Command {
  return new Command('metrics')
    .description('print the metrics registry (Prometheus text format), or --markdown: the list of metrics')
    .option('--markdown', 'list every metric family as a Markdown table')
    .option('--process', "include prom-client's process metrics (process_*, nodejs_*)")
    .action(async (opts: { markdown?: boolean; process?: boolean }, command: Command) => {
      const runtime = defaultRuntime();
      const { metrics } = runtime;
      if (opts.markdown) {
        process.stdout.write(await metrics.markdown());
        return;
      }
      // The sources the scrape-time gauges read, as a clusterer of this configuration has them.
      const config = await cliConfig(command, []);
      runtime.breakers(config);
      runtime.resourceMonitor(config);
      runtime.errorTracker(config);
      if (opts.process) metrics.withProcessMetrics();
      process.stdout.write(await metrics.text());
    });
}
