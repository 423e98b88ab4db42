/** `neurocluster bench <workload>` (also `npm run bench -- <workload>`): one JSON line per run. */
import { Argument, Command, Option } from 'commander';
import { runBench } from '../../bench/harness.js';
import { WORKLOAD_NAMES, type WorkloadName } from '../../bench/workloads.js';
import { BACKEND_NAMES, type BackendName } from '../../core/matrix.js';
import { defaultRuntime, selectionContext } from '../../runtime/runtime.js';
import { cliConfig } from '../context.js';
import { parseInteger, parseNumber } from '../options.js';

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
    .description('time a workload of reference.py; --compare runs the reference too and prints the ratio')
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
    .option('--reference <path>', 'reference.py (default ../shared/reference/reference.py)')
    .option('--python <path>', 'Python for the reference (default /usr/bin/python3)')
    .action(async (workload: WorkloadName, flags: BenchFlags, command: Command) => {
      // The backends' settings (engine.wasm, engine.webgpu, and their NEUROCLUSTER_* variables).
      const { engine } = await cliConfig(command, []);
      const result = await runBench(
        { workload, ...flags, compare: flags.compare === true },
        defaultRuntime().registry,
        selectionContext(engine, Number.POSITIVE_INFINITY),
      );
      process.stdout.write(`${JSON.stringify(result)}\n`);
    });
}
