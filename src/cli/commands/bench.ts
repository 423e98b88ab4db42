/**
 * `neurocluster bench <workload>` (also `npm run bench -- <workload>`): a table on a terminal, else
 * (a pipe, or --json) one JSON line per run.
 */
import { Argument, Command, Option } from 'commander';
import { type BenchResult, runBench } from '../../bench/harness.js';
import { WORKLOAD_NAMES, type WorkloadName } from '../../bench/workloads.js';
import { BACKEND_NAMES, type BackendName } from '../../core/matrix.js';
import { defaultRuntime, selectionContext } from '../../runtime/runtime.js';
import { cliConfig, type GlobalFlags } from '../context.js';
import { parseInteger, parseNumber } from '../options.js';
import { table } from '../output.js';

interface BenchFlags {
  n: number;
  d: number;
  k: number;
  iters: number;
  r: number;
  t: number;
  leak: number;
  connectivity: number;
  reps: number;
  seed: number;
  backend: BackendName | 'auto';
  compare?: boolean;
  reference?: string;
  python?: string;
}

export function benchCommand(): Command {
  return new Command('bench')
    .addArgument(new Argument('<workload>', 'what to time').choices(WORKLOAD_NAMES))
    .addOption(new Option('--n <n>', 'rows').argParser(parseInteger).default(50_000))
    .addOption(new Option('--d <n>', 'features').argParser(parseInteger).default(4))
    .addOption(new Option('-k, --k <n>', 'clusters').argParser(parseInteger).default(16))
    .addOption(new Option('--iters <n>', 'K-means iterations').argParser(parseInteger).default(20))
    .addOption(new Option('--r <n>', 'reservoir or layer size').argParser(parseInteger).default(256))
    .addOption(new Option('--t <n>', 'time steps').argParser(parseInteger).default(50))
    .addOption(new Option('--leak <x>', 'leak rate').argParser(parseNumber).default(0.3))
    .addOption(
      new Option('--connectivity <x>', 'fraction of non-zero recurrent weights')
        .argParser(parseNumber)
        .default(1),
    )
    .addOption(
      new Option('--reps <n>', 'repetitions; the best is reported').argParser(parseInteger).default(3),
    )
    .addOption(new Option('--seed <n>', 'seed').argParser(parseInteger).default(0))
    .addOption(new Option('--backend <b>', 'backend').choices(['auto', ...BACKEND_NAMES]).default('auto'))
    .option('--compare', 'also run the NumPy/scikit-learn reference and report the ratio')
    .option('--reference <path>', "reference script (default: the package's bench/reference/reference.py)")
    .option('--python <path>', 'Python for the reference (default /usr/bin/python3)')
    .action(async (workload: WorkloadName, flags: BenchFlags, command: Command) => {
      // The backends' settings (engine.wasm, engine.webgpu, and their NEUROCLUSTER_* variables).
      const { engine } = await cliConfig(command, []);
      const result = await runBench(
        { workload, ...flags, compare: flags.compare === true },
        defaultRuntime().registry,
        selectionContext(engine, Number.POSITIVE_INFINITY),
      );
      const { json } = command.optsWithGlobals() as GlobalFlags;
      if (json || !process.stdout.isTTY) process.stdout.write(`${JSON.stringify(result)}\n`);
      else process.stdout.write(table(`neurocluster bench: ${workload}`, benchRows(result)));
    });
}

/** A bench result as the rows of the terminal's table. */
export function benchRows(result: BenchResult): [string, string][] {
  const {
    workload: _w,
    impl: _i,
    backend,
    seconds,
    gflops,
    reps,
    reference,
    ratio,
    endToEnd,
    threads,
    roofline,
    ...shape
  } = result;
  const rows: [string, string][] = [
    ['backend', backend],
    [
      'shape',
      Object.entries(shape)
        .map(([k, v]) => `${k} ${String(v)}`)
        .join(', '),
    ],
    ['seconds', `${seconds.toPrecision(4)} (best of ${reps})`],
    ['GFLOP/s', gflops.toPrecision(4)],
  ];
  if (endToEnd !== undefined) rows.push(['whole call', `${endToEnd.toPrecision(4)} s`]);
  if (threads)
    rows.push([
      'threads',
      Object.entries(threads)
        .map(([k, v]) => `${k}: ${v.toPrecision(4)} s`)
        .join(', '),
    ]);
  if (roofline)
    rows.push([
      'SIMD roofline',
      `${roofline.gflops.toPrecision(4)} GFLOP/s (ours ${(roofline.share * 100).toFixed(0)}%)`,
    ]);
  if (reference) rows.push(['reference', `${reference.seconds.toPrecision(4)} s (${reference.impl})`]);
  if (ratio !== undefined)
    rows.push(['ratio', `${ratio.toPrecision(3)} (ours over the reference; below 1 is faster)`]);
  return rows;
}
