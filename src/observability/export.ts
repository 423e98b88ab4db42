/**
 * Metrics of a batch run: a CLI run is a job that ends, so nothing scrapes it. After the run its
 * registry is written in the text exposition format for node_exporter's textfile collector
 * (atomically: the collector never reads half a file), or pushed to a Prometheus Pushgateway.
 */
import { hostname } from 'node:os';
import { Pushgateway } from 'prom-client';
import { engineFilesOf } from '../config/home.js';
import { writeFileAtomic } from '../core/atomic.js';
import { type EngineMetrics, metrics } from './metrics.js';

/** Writes the registry to `path` (`*.prom` for the textfile collector). */
export async function writeMetricsFile(path: string, from: EngineMetrics = metrics): Promise<void> {
  await writeFileAtomic(path, await from.text(), { engine: engineFilesOf() });
}

export interface PushOptions {
  /** The Pushgateway job; `neurocluster` by default. */
  readonly jobName?: string;
  /** The grouping key under the job; `{ instance: <hostname> }` by default, so machines do not overwrite each other. */
  readonly groupings?: Readonly<Record<string, string>>;
  readonly timeoutMs?: number;
}

/**
 * Pushes the registry to the Pushgateway at `url` with PUT, replacing what the previous run of the
 * same job and grouping pushed (so a metric the run did not touch does not linger).
 */
export async function pushMetrics(
  url: string,
  options: PushOptions = {},
  from: EngineMetrics = metrics,
): Promise<void> {
  const gateway = new Pushgateway(url, { timeout: options.timeoutMs ?? 10_000 }, from.registry);
  await gateway.push({
    jobName: options.jobName ?? 'neurocluster',
    groupings: { ...(options.groupings ?? { instance: hostname() }) },
  });
}
