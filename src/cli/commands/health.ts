/**
 * `neurocluster health`: liveness and readiness checks (src/observability/health.ts), each with its
 * status, duration and message; `neurocluster breakers reset` closes every circuit breaker.
 */
import { Command } from 'commander';
import { healthz } from '../../observability/health.js';
import { defaultRuntime, selectionContext } from '../../runtime/runtime.js';
import { cliConfig, type GlobalFlags } from '../context.js';
import { table } from '../output.js';

export function healthCommand(): Command {
  return new Command('health').action(async (_opts: unknown, command: Command) => {
    const flags = command.optsWithGlobals() as GlobalFlags;
    const config = await cliConfig(command, []);
    const runtime = defaultRuntime();
    const book = runtime.breakers(config);
    const monitor = runtime.resourceMonitor(config);
    const report = await healthz({
      registry: runtime.registry,
      backend: config.engine.backend,
      selection: selectionContext(config.engine, Number.POSITIVE_INFINITY),
      breakers: book,
      monitor,
      home: runtime.home,
    });
    if (flags.json) {
      // The breakers and resources the checks read, not a second (and shorter) sample.
      process.stdout.write(`${JSON.stringify({ ...report, breakerFile: book.file })}\n`);
    } else {
      const rows: [string, string][] = report.checks.map((c) => [
        c.name,
        `${c.status}: ${c.message} (${c.durationMs.toFixed(1)} ms)`,
      ]);
      process.stdout.write(table(`neurocluster health: ${report.status}`, rows));
    }
    if (report.status === 'fail') process.exitCode = 1;
  });
}

export function breakersCommand(): Command {
  const cmd = new Command('breakers');
  cmd
    .command('reset')
    .description('close every circuit breaker (deletes $NEUROCLUSTER_HOME/state/breakers.json)')
    .action(async (_opts: unknown, command: Command) => {
      const flags = command.optsWithGlobals() as GlobalFlags;
      const book = defaultRuntime().breakers(await cliConfig(command, []));
      const count = book.list().length;
      book.reset();
      if (flags.json) process.stdout.write(`${JSON.stringify({ reset: count, breakerFile: book.file })}\n`);
      else process.stdout.write(`closed ${count} circuit breaker${count === 1 ? '' : 's'}\n`);
    });
  return cmd;
}
