/** What the CLI test files share: the example files, a scratch directory with a home, the audit records. */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, runCli, tempDir } from '../helpers.js';

export const IRIS = join(ROOT, 'examples/iris.csv');
export const EMPLOYEES = join(ROOT, 'examples/employees-synthetic.csv');
export const hasReference =
  existsSync(join(ROOT, 'bench/reference/reference.py')) &&
  spawnSync('/usr/bin/python3', ['-c', 'import sklearn'], { stdio: 'ignore' }).status === 0;

/** A test file's scratch directory, the command run on a home inside it, and files written into it. */
export function cliScratch() {
  const dir = tempDir();
  return {
    dir,
    cli: (args: string[], env: Record<string, string> = {}) => runCli(args, { home: join(dir, 'home'), env }),
    file(name: string, content: string | Uint8Array): string {
      const path = join(dir, name);
      writeFileSync(path, content);
      return path;
    },
  };
}

/** The records of the audit log of a NEUROCLUSTER_HOME, parsed. */
export function auditRecords(home: string) {
  return readFileSync(join(home, 'audit', 'audit.jsonl'), 'utf8')
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l));
}
