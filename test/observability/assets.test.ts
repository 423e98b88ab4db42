/**
 * The deployable monitoring in deploy/observability: every metric its alert rules and Grafana
 * dashboard read exists in the registry; the dashboard is well formed; and, where promtool is
 * installed (CI installs Debian's prometheus), the rules pass `check rules` and their unit tests,
 * and the registry after a real run (process metrics included) passes `check metrics`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { NeuromorphicClusterer } from '../../src/clusterer.js';
import { createLogger } from '../../src/observability/logger.js';
import { EngineMetrics, metrics } from '../../src/observability/metrics.js';
import { ROOT } from '../helpers.js';

const DIR = join(ROOT, 'deploy/observability');

interface Rule {
  alert: string;
  expr: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: { refId: string; expr: string }[];
}

const rules = (
  parse(readFileSync(join(DIR, 'alerts.yml'), 'utf8')) as { groups: { rules: Rule[] }[] }
).groups.flatMap((g) => g.rules);
const dashboard = JSON.parse(readFileSync(join(DIR, 'grafana-dashboard.json'), 'utf8')) as {
  uid: string;
  panels: Panel[];
};

/** Metric names in a PromQL expression, as series names (histograms by their _bucket/_sum/_count). */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\bneurocluster_[a-z0-9_]+/g)].map((m) => m[0]);
}

/** The series names the registry exports: each family, and a histogram's _bucket, _sum and _count. */
async function exportedSeries(): Promise<Set<string>> {
  const names = new Set<string>();
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    names.add(m.name);
    if (String(m.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(m.name + s);
  }
  return names;
}

const hasPromtool = spawnSync('promtool', ['--version']).status === 0;

describe('deploy/observability', () => {
  it('has the alerts an operator needs, each with a severity, summary and description', () => {
    const names = rules.map((r) => r.alert);
    for (const needed of [
      'NeuroclusterHighErrorRate',
      'NeuroclusterCircuitBreakerOpen',
      'NeuroclusterHighMemory',
      'NeuroclusterHighFallbackRate',
      'NeuroclusterSecurityAnomaly',
      'NeuroclusterSlowOperations',
      'NeuroclusterPrivacyBudgetNearlySpent',
    ])
      expect(names).toContain(needed);
    for (const r of rules) {
      expect(['page', 'ticket']).toContain(r.labels?.severity);
      expect(r.annotations?.summary, r.alert).toBeTruthy();
      expect(r.annotations?.description, r.alert).toBeTruthy();
    }
  });

  it('reads only metrics the registry exports, in rules and dashboard alike', async () => {
    const exported = await exportedSeries();
    const used = [
      ...rules.flatMap((r) => metricNames(r.expr).map((n) => [r.alert, n] as const)),
      ...dashboard.panels.flatMap((p) =>
        (p.targets ?? []).flatMap((t) => metricNames(t.expr).map((n) => [p.title, n] as const)),
      ),
    ];
    expect(used.length).toBeGreaterThan(40);
    const missing = used.filter(([, n]) => !exported.has(n)).map(([where, n]) => `${where}: ${n}`);
    expect(missing).toEqual([]);
  });

  it('has a well-formed dashboard: unique panel ids, a query per target, a Prometheus data source variable', () => {
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(dashboard.uid).toBe('neurocluster-overview');
    for (const p of dashboard.panels) {
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
      if (p.type === 'row') continue;
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      const refIds = p.targets!.map((t) => t.refId);
      expect(new Set(refIds).size, p.title).toBe(refIds.length);
      for (const t of p.targets!) expect(t.expr, p.title).toMatch(/neurocluster_/);
    }
  });

  it.skipIf(!hasPromtool)(
    'passes promtool: check rules, the rule unit tests, check metrics after a real run',
    async () => {
      execFileSync('promtool', ['check', 'rules', 'alerts.yml'], { cwd: DIR });
      execFileSync('promtool', ['test', 'rules', 'alerts.test.yml'], { cwd: DIR });
      const clusterer = new NeuromorphicClusterer({
        method: 'esn',
        nClusters: 3,
        seed: 2,
        backend: 'js',
        logger: createLogger({ level: 'silent' }),
      });
      await clusterer.fit(join(ROOT, 'examples/iris.csv'));
      const check = (text: string) => {
        const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
        expect(r.stdout + r.stderr).toBe('');
        expect(r.status).toBe(0);
      };
      check(await metrics.text());
      // prom-client's process metrics, as the service will export them, pass too.
      check(await new EngineMetrics().withProcessMetrics().text());
    },
  );
});
