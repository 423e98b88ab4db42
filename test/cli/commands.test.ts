/**
 * The command table: what the root's help shows of each command without loading it is what the
 * command is, the command asked for is found behind the root's options, and the root's help
 * loads no command (nor zod, the engine or its dependencies): start-up is paid on every call.
 */
import { spawnSync } from 'node:child_process';
import { Command, Help, Option } from 'commander';
import { describe, expect, it } from 'vitest';
import { COMMANDS, requestedCommand } from '../../src/cli/commands/index.js';
import { CLI } from '../helpers.js';

describe('the command table', () => {
  it.each(COMMANDS.map((c) => [c.name, c] as const))(
    '%s: its name and help term are the command’s',
    async (_n, entry) => {
      const cmd = await entry.load();
      expect(cmd.name()).toBe(entry.name);
      expect(new Help().subcommandTerm(cmd)).toBe(entry.term);
    },
  );

  it('finds the command behind the root options and their values, and after `help`', () => {
    const root = new Command('r')
      .option('--json')
      .option('--config <file>')
      .addOption(new Option('-v, --verbose'))
      .option('--log-level <level>');
    expect(requestedCommand(['cluster', 'x.csv'], root)).toBe('cluster');
    expect(requestedCommand(['--config', 'keys', '--json', 'cluster'], root)).toBe('cluster');
    expect(requestedCommand(['--config=keys', '-v', 'score'], root)).toBe('score');
    expect(requestedCommand(['help', 'predict'], root)).toBe('predict');
    expect(requestedCommand(['--log-level', 'warn'], root)).toBeUndefined();
    expect(requestedCommand(['--help'], root)).toBeUndefined();
  });
});

/** The modules `node dist/src/cli/main.js ...args` loads, by URL (an ESM loader hook lists them). */
function modulesLoaded(args: string[]): { urls: string[]; stdout: string } {
  const hooks = `export async function load(url, context, next) { process.stderr.write('LOADED ' + url + '\\n'); return next(url, context); }`;
  const register = `import { register } from 'node:module'; register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hooks)}));`;
  const r = spawnSync(
    process.execPath,
    ['--import', `data:text/javascript,${encodeURIComponent(register)}`, CLI, ...args],
    {
      encoding: 'utf8',
    },
  );
  expect(r.status, r.stderr).toBe(0);
  const urls = r.stderr
    .split('\n')
    .filter((l) => l.startsWith('LOADED '))
    .map((l) => l.slice(7));
  return { urls, stdout: r.stdout };
}

describe('start-up', () => {
  it('the root help lists every command and loads none of them, nor zod or the engine', () => {
    const { urls, stdout } = modulesLoaded(['--help']);
    for (const c of COMMANDS) expect(stdout).toContain(`  ${c.term} `);
    expect(
      urls.filter((u) =>
        /\/cli\/commands\/(?!index)|node_modules\/(zod|pino|prom-client|better-sqlite3)|\/runtime\/runtime/.test(
          u,
        ),
      ),
    ).toEqual([]);
  });

  it('a command loads its own module, not the others', () => {
    const { urls } = modulesLoaded(['config', 'schema']);
    const commands = urls
      .filter((u) => u.includes('/cli/commands/'))
      .map((u) => u.replace(/.*\/cli\/commands\//, ''));
    expect(commands.sort()).toEqual(['config.js', 'index.js']);
  });
});
