/**
 * `npm run bench:scale [-- --rows 10000000] [--hybrid 200000,1000000,2000000] [--k 8] [--d 16]
 * [--only kmeans|hybrid] [--dir DIR]`: the streamed fit at scale, each run a whole `neurocluster
 * cluster` process under `/usr/bin/time -f %M` (its peak RSS), on Gaussian blobs written as float32
 * NPY (8 centres, as makeBlobs makes them), labels written with --labels-out:
 *
 * - kmeans on `--rows` rows against the scikit-learn pipeline a user would write on the same file
 *   (bench/scale_sklearn.py: np.load, StandardScaler, KMeans(n_init='auto'), labels written), run
 *   in the same command with OpenBLAS's variables unset; wall time ratio, peak RSS, ARI of both;
 * - hybrid on each `--hybrid` size: peak RSS, wall time, seconds per row over those of the
 *   smallest size, ARI.
 *
 * The data files go to a fresh directory under the system's temporary one (or `--dir`, kept) and
 * are removed at the end. One JSON object on stdout.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeBlobsNpy } from '../src/bench/workloads.js';
import { ContingencyCounts } from '../src/cluster/streamed.js';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '10000000' },
    hybrid: { type: 'string', default: '200000,1000000,2000000' },
    k: { type: 'string', default: '8' },
    d: { type: 'string', default: '16' },
    only: { type: 'string' },
    dir: { type: 'string' },
  },
});
const k = Number(values.k);
const d = Number(values.d);
const here = dirname(fileURLToPath(import.meta.url));
const cli = resolve(here, '../src/cli/main.js');
const sklearnScript = resolve(here, '../../bench/scale_sklearn.py');
const dir = values.dir ?? mkdtempSync(join(tmpdir(), 'neurocluster-scale-'));

interface Measured {
  readonly seconds: number;
  readonly peakRssMiB: number;
  readonly stdout: string;
}

/** Runs a whole process under /usr/bin/time: its wall time, peak RSS and output. */
function measure(command: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Measured {
  const t0 = performance.now();
  const out = spawnSync('/usr/bin/time', ['-f', '%M', command, ...args], {
    env,
    encoding: 'utf8',
    maxBuffer: 1 << 30,
  });
  const seconds = (performance.now() - t0) / 1000;
  if (out.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${out.status}): ${out.stderr}`);
  const lines = out.stderr.trim().split('\n');
  return { seconds, peakRssMiB: Math.round(Number(lines.at(-1)) / 1024), stdout: out.stdout };
}

/** The blobs file of n rows and its truth, written once. */
async function blobs(n: number): Promise<{ data: string; truth: string }> {
  const data = join(dir, `blobs-${n}x${d}.npy`);
  const truth = join(dir, `blobs-${n}x${d}.truth.npy`);
  if (!existsSync(data) || !existsSync(truth)) await writeBlobsNpy(data, truth, n, d, 8, 0);
  return { data, truth };
}

/** ARI of a labels file (`label` per line after the header) against the true clusters, read a block at a time. */
async function ariOf(labelsPath: string, truthPath: string): Promise<number> {
  // The int32 NPY writeBlobsNpy wrote (version 1: a 16-bit header length at byte 8).
  const bytes = readFileSync(truthPath);
  const start = 10 + bytes.readUInt16LE(8);
  const truth = new Int32Array(bytes.buffer.slice(bytes.byteOffset + start, bytes.byteOffset + bytes.length));
  const counts = new ContingencyCounts(k);
  const file = await open(labelsPath);
  let row = 0;
  let rest = '';
  let header = true;
  const classes: number[] = [];
  const labels: number[] = [];
  const flush = () => {
    counts.add(classes, labels);
    classes.length = 0;
    labels.length = 0;
  };
  for await (const block of file.createReadStream({ encoding: 'utf8', highWaterMark: 1 << 20 })) {
    const lines = (rest + (block as string)).split('\n');
    rest = lines.pop()!;
    for (const line of lines) {
      if (header) {
        header = false;
        continue;
      }
      classes.push(truth[row++]!);
      labels.push(Number(line));
    }
    flush();
  }
  if (row !== truth.length) throw new Error(`${labelsPath}: ${row} labels for ${truth.length} rows`);
  return counts.quality().ari;
}

/** One `neurocluster cluster` run with --labels-out: wall time, peak RSS, timings, ARI. */
async function ours(method: string, n: number) {
  const { data, truth } = await blobs(n);
  const labels = join(dir, `labels-${method}-${n}.csv`);
  const run = measure(process.execPath, [
    cli,
    'cluster',
    data,
    '--method',
    method,
    '--k',
    String(k),
    '--labels-out',
    labels,
    '--json',
  ]);
  const result = JSON.parse(run.stdout) as {
    timings: Record<string, number>;
    streamed?: unknown;
    backend: string;
  };
  const ari = await ariOf(labels, truth);
  rmSync(labels);
  return {
    rows: n,
    seconds: run.seconds,
    peakRssMiB: run.peakRssMiB,
    ari,
    backend: result.backend,
    streamed: result.streamed,
    timings: result.timings,
  };
}

/** The scikit-learn pipeline on the same file, with OpenBLAS left to its defaults. */
async function sklearn(n: number) {
  const { data, truth } = await blobs(n);
  const labels = join(dir, `labels-sklearn-${n}.csv`);
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  const run = measure(
    '/usr/bin/python3',
    [sklearnScript, data, truth, '--k', String(k), '--labels-out', labels],
    env,
  );
  rmSync(labels);
  const out = JSON.parse(run.stdout) as { ari: number; seconds: Record<string, number> };
  return { rows: n, seconds: run.seconds, peakRssMiB: run.peakRssMiB, ari: out.ari, steps: out.seconds };
}

const round = (v: number, digits = 3) => Math.round(v * 10 ** digits) / 10 ** digits;
const report: Record<string, unknown> = { bench: 'scale', k, d };
try {
  if (values.only !== 'hybrid') {
    const n = Number(values.rows);
    const mine = await ours('kmeans', n);
    const reference = await sklearn(n);
    report.kmeans = {
      neurocluster: mine,
      sklearn: reference,
      timeRatio: round(mine.seconds / reference.seconds),
    };
  }
  if (values.only !== 'kmeans') {
    const sizes = values.hybrid.split(',').map(Number);
    const runs = [];
    for (const n of sizes) {
      runs.push(await ours('hybrid', n));
      // Keep the disk to what one size needs.
      if (!values.dir) rmSync(join(dir, `blobs-${n}x${d}.npy`), { force: true });
    }
    const base = runs[0]!.seconds / runs[0]!.rows;
    report.hybrid = runs.map((r) => ({ ...r, perRowRatio: round(r.seconds / r.rows / base) }));
  }
} finally {
  if (!values.dir) rmSync(dir, { recursive: true, force: true });
}
process.stdout.write(`${JSON.stringify(report)}\n`);
