/**
 * What the process benches share: a `neurocluster` command started as a child process that says
 * it is up with one JSON line on stdout (`serve`, `worker`), its exit awaited from its start, and
 * none left running when a bench ends.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The built CLI (this module runs from dist/bench/). */
export const CLI = resolve(dirname(fileURLToPath(import.meta.url)), '../src/cli/main.js');

/** The body of an iris-sized job (150 x 4, `hybrid`, k = 3): the service benches' job. */
export function irisJob(): string {
  const csv = readFileSync(
    resolve(dirname(fileURLToPath(import.meta.url)), '../../examples/iris.csv'),
    'utf8',
  );
  const data = csv
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => line.split(',').slice(0, 4).map(Number));
  // hybrid, not the default (K-means for rows): the load the service figures were measured with.
  return JSON.stringify({ data, options: { kmeans: { nClusters: 3 }, engine: { method: 'hybrid' } } });
}

export interface Started<Line> {
  readonly child: ChildProcess;
  /** Its first stdout line, parsed. */
  readonly line: Line;
  /** Settles when it has exited, however early (a listener added late would never fire). */
  readonly exited: Promise<unknown>;
  /** Its last 4,000 characters of stderr. */
  readonly log: () => string;
}

const started: Started<unknown>[] = [];

/** Starts `neurocluster ...args` with `env` added, and waits for its first stdout line. */
export function startCli<Line>(args: readonly string[], env: NodeJS.ProcessEnv): Promise<Started<Line>> {
  return startNode([CLI, ...args], env, `neurocluster ${args[0]}`);
}

/** Starts `node ...argv` with `env` added, and waits for its first stdout line. */
export async function startNode<Line>(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  name: string,
): Promise<Started<Line>> {
  const child = spawn(process.execPath, argv, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = once(child, 'exit');
  let log = '';
  child.stderr!.on('data', (d) => {
    log = (log + d).slice(-4000);
  });
  child.once('exit', (code, signal) => {
    if (signal !== 'SIGKILL' && signal !== 'SIGTERM' && code !== 0)
      process.stderr.write(`${name} exited (${code ?? signal}):\n${log}\n`);
  });
  let out = '';
  const line = await new Promise<string>((resolveLine, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolveLine(out.split('\n')[0]!);
    });
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}: ${log}`)));
  });
  const result: Started<Line> = { child, line: JSON.parse(line) as Line, exited, log: () => log };
  started.push(result);
  return result;
}

/** Stops it (SIGTERM unless told otherwise) and waits for its exit. */
export async function stopCli(p: Started<unknown>, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  p.child.kill(signal);
  await p.exited;
}

/** Kills whatever a bench started and is still running (a phase that threw). */
export async function killAll(): Promise<void> {
  for (const { child } of started)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await Promise.all(started.map(({ exited }) => exited));
}

export function quantile(sorted: readonly number[], q: number): number {
  return sorted.length === 0
    ? Number.NaN
    : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}
