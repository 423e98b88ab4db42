/**
 * The maker of one registry's metrics (src/observability/metrics.ts makes the engine's with it):
 * each a prom-client metric registered there, or a no-op when metrics are off.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * What a metric is when metrics are off (`NEUROCLUSTER_METRICS=off`): every update does nothing,
 * so the engine pays nothing for them (the overhead benchmark compares against this).
 */
const NOOP_METRIC = {
  inc() {},
  dec() {},
  set() {},
  observe() {},
  reset() {},
  remove() {},
};

/**
 * Makes the metrics of one registry, or no-ops when metrics are off. A base class so the switch is
 * set before the fields of its subclass (EngineMetrics' metrics) are made.
 */
export class MetricFactory {
  readonly registry = new Registry();

  constructor(
    /** False under `NEUROCLUSTER_METRICS=off` (read when the metrics are made): nothing is recorded. */
    readonly enabled: boolean,
  ) {}

  protected counter<L extends string>(name: string, help: string, labelNames: readonly L[] = []) {
    if (!this.enabled) return NOOP_METRIC as unknown as Counter<L>;
    return new Counter<L>({ name, help, labelNames, registers: [this.registry] });
  }

  protected gauge<L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[] = [],
    collect?: (this: Gauge<L>) => void,
  ) {
    if (!this.enabled) return NOOP_METRIC as unknown as Gauge<L>;
    return new Gauge<L>({
      name,
      help,
      labelNames,
      registers: [this.registry],
      ...(collect ? { collect } : {}),
    });
  }

  protected histogram<L extends string>(
    name: string,
    help: string,
    buckets: number[],
    labelNames: readonly L[] = [],
  ) {
    if (!this.enabled) return NOOP_METRIC as unknown as Histogram<L>;
    return new Histogram<L>({ name, help, buckets, labelNames, registers: [this.registry] });
  }
}
