/**
 * `neurocluster health`: which backends start on this machine and the state of every circuit
 * breaker; `neurocluster breakers reset` closes them all.
 */
import { Command } from 'commander';
import { defaultRegistry } from '../../backends/index.js';
import { breakerBook, resourceMonitorFor } from '../../clusterer.js';
import type { Config } from '../../config/schema.js';
import { cliConfig, type GlobalFlags } from '../context.js';
import { table } from '../output.js';

/** Each registered backend: does it start, and on what device. */
async function backendStates(config: Config) {
  const out: { name: string; ok: boolean; device?: string; reason?: string }[] = [];
  for (const name of defaultRegistry.registered()) {
    try {
      const backend = await defaultRegistry.get(name, false, {
        webgpu: {
          adapter: config.engine.webgpu.adapter,
          allowSoftware: config.engine.webgpu.allowSoftware,
        },
        wasm: { threads: config.engine.wasm.threads },
      });
      out.push({ name, ok: true, device: backend.device });
    } catch (error) {
      out.push({ name, ok: false, reason: error instanceof Error ? error.message : String(error) });
    }
  }
  return out;
}

export function healthCommand(): Command {
  return new Command('health')
    .description(
      'backends that start here, and the circuit breakers of $NEUROCLUSTER_HOME/state/breakers.json',
    )
    .action(async (_opts: unknown, command: Command) => {
      const flags = command.optsWithGlobals() as GlobalFlags;
      const config = await cliConfig(command, []);
      const backends = await backendStates(config);
      const book = breakerBook(config);
      const breakers = book.list();
      const healthy = backends.some((b) => b.ok);
      const resources = resourceMonitorFor(config).sample();
      if (flags.json) {
        process.stdout.write(
          `${JSON.stringify({ status: healthy ? 'ok' : 'down', backends, breakers, breakerFile: book.file, resources })}\n`,
        );
      } else {
        const rows: [string, string][] = backends.map((b) => [
          `backend ${b.name}`,
          b.ok ? `ok: ${b.device}` : `unavailable: ${b.reason}`,
        ]);
        for (const b of breakers) {
          const since = b.openedAt ? ` since ${b.openedAt}` : '';
          rows.push([`breaker ${b.key}`, `${b.state}${since} (state kept until ${b.expiresAt})`]);
        }
        if (breakers.length === 0) rows.push(['breakers', 'all closed']);
        const pct = (f: number) => `${(100 * f).toFixed(1)}%`;
        const mib = (b: number) => `${Math.round(b / 2 ** 20)} MiB`;
        const { memory, cpu, disk, device } = resources;
        rows.push([
          'memory',
          `${memory.level}: ${mib(memory.used)} of ${mib(memory.total)} (${pct(memory.fraction)})`,
        ]);
        rows.push(['cpu', `${cpu.level}: ${pct(cpu.fraction)} of all cores`]);
        if (disk) rows.push(['disk (home)', `${disk.level}: ${pct(disk.fraction)} in use`]);
        if (device)
          rows.push(['device memory', `${device.level}: ${mib(device.used)} of ${mib(device.total)}`]);
        process.stdout.write(table('neurocluster health', rows));
      }
      if (!healthy) process.exitCode = 1;
    });
}

export function breakersCommand(): Command {
  const cmd = new Command('breakers').description('circuit breakers of the backends');
  cmd
    .command('reset')
    .description('close every circuit breaker (deletes $NEUROCLUSTER_HOME/state/breakers.json)')
    .action(async (_opts: unknown, command: Command) => {
      const flags = command.optsWithGlobals() as GlobalFlags;
      const book = breakerBook(await cliConfig(command, []));
      const count = book.list().length;
      book.reset();
      if (flags.json) process.stdout.write(`${JSON.stringify({ reset: count, breakerFile: book.file })}\n`);
      else process.stdout.write(`closed ${count} circuit breaker${count === 1 ? '' : 's'}\n`);
    });
  return cmd;
}
