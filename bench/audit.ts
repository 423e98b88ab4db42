/**
 * `npm run bench:audit [-- --pairs 10 --n 20000 --d 8 --method esn]`: what the audit log costs a
 * CLI run. Interleaved pairs of child processes each run `neurocluster cluster <file> --json` once
 * (in-process through the CLI's `main`, so process start-up is not counted), with the audit log on
 * and off (`NEUROCLUSTER_AUDIT__ENABLED`), in one temporary NEUROCLUSTER_HOME whose keyring exists
 * before the first run; each reports the run's seconds and its peak RSS. One JSON line: the
 * medians (and ranges) of the per-pair ratios on/off, and the audit's own cost per run measured
 * directly (`auditMsPerRun`), with its share of the run's median time.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { makeBlobs } from '../src/bench/workloads.js';

const { values } = parseArgs({
  options: {
    pairs: { type: 'string', default: '10' },
    n: { type: 'string', default: '20000' },
    d: { type: 'string', default: '8' },
    method: { type: 'string', default: 'esn' },
    child: { type: 'string' },
  },
});

if (values.child) {
  const { main } = await import('../src/cli/main.js');
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = () => true;
  const t0 = performance.now();
  const code = await main([
    'node',
    'neurocluster',
    'cluster',
    values.child,
    '--k',
    '5',
    '--method',
    values.method,
    '--json',
  ]);
  const seconds = (performance.now() - t0) / 1000;
  write(`${JSON.stringify({ code, seconds, maxRssKiB: process.resourceUsage().maxRSS })}\n`);
  process.exit(0);
}

const n = Number(values.n);
const d = Number(values.d);
const pairs = Number(values.pairs);
const dir = mkdtempSync(join(tmpdir(), 'neurocluster-audit-bench-'));
const csv = join(dir, 'blobs.csv');
const { points } = makeBlobs(n, d, 5, 0);
const lines = [Array.from({ length: d }, (_, j) => `x${j}`).join(',')];
for (let i = 0; i < n; i++)
  lines.push(Array.from(points.data.subarray(i * d, (i + 1) * d), (v) => v.toFixed(5)).join(','));
writeFileSync(csv, `${lines.join('\n')}\n`);
const self = fileURLToPath(import.meta.url);
const home = join(dir, 'home');

function run(audit: boolean): { seconds: number; maxRssKiB: number } {
  const r = spawnSync(process.execPath, [self, '--child', csv, '--method', values.method], {
    encoding: 'utf8',
    env: { ...process.env, NEUROCLUSTER_HOME: home, NEUROCLUSTER_AUDIT__ENABLED: String(audit) },
  });
  const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as {
    code: number;
    seconds: number;
    maxRssKiB: number;
  };
  if (out.code !== 0) throw new Error(`cluster exited ${out.code}: ${r.stderr}`);
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
const summary = (xs: number[]) => {
  const r = (x: number) => Math.round(x * 10000) / 10000;
  return { median: r(median(xs)), min: r(Math.min(...xs)), max: r(Math.max(...xs)) };
};

run(true); // creates the keyring and the store; warms the file cache
const time: number[] = [];
const rss: number[] = [];
const seconds: number[] = [];
for (let p = 0; p < pairs; p++) {
  // Alternating which goes first, so that warming and drift favour neither.
  let on: ReturnType<typeof run>;
  let off: ReturnType<typeof run>;
  if (p % 2 === 0) {
    on = run(true);
    off = run(false);
  } else {
    off = run(false);
    on = run(true);
  }
  time.push(on.seconds / off.seconds);
  rss.push(on.maxRssKiB / off.maxRssKiB);
  seconds.push(on.seconds);
}
/**
 * The audit's own cost in a CLI run, measured directly: opening the log (keyring, store, the
 * anomaly detector primed from the last 1,000 records) and appending a run's two records, the mean
 * of 200 runs in-process, after 1,000 records exist.
 */
async function auditMsPerRun(): Promise<number> {
  process.env.NEUROCLUSTER_HOME = join(dir, 'direct');
  const { audit } = await import('../src/cli/audit.js');
  const { resolveConfig } = await import('../src/config/load.js');
  const config = resolveConfig();
  const events = [
    { action: 'data.read', resource: csv, outcome: 'success' as const, details: { rows: n } },
    { action: 'model.write', resource: 'model.json', outcome: 'success' as const },
  ];
  for (let i = 0; i < 500; i++) audit(config, events);
  const t0 = performance.now();
  for (let i = 0; i < 200; i++) audit(config, events);
  return (performance.now() - t0) / 200;
}

const directMs = await auditMsPerRun();
process.stdout.write(
  `${JSON.stringify({
    bench: 'audit',
    method: values.method,
    n,
    d,
    pairs,
    runSeconds: Math.round(median(seconds) * 1000) / 1000,
    timeAuditOnOverOff: summary(time),
    peakRssAuditOnOverOff: summary(rss),
    auditMsPerRun: Math.round(directMs * 100) / 100,
    auditShareOfRun: Number((directMs / 1000 / median(seconds)).toExponential(2)),
  })}\n`,
);
