/**
 * `neurocluster privacy status [--dataset <id>]`: the privacy budget of one dataset, or of every
 * dataset charged in this NEUROCLUSTER_HOME.
 */
import { Command } from 'commander';
import { defaultRuntime } from '../../runtime/runtime.js';
import type { BudgetStatus } from '../../security/privacy/accountant.js';
import { cliConfig, type GlobalFlags } from '../context.js';
import { table } from '../output.js';

function rows(s: BudgetStatus): [string, string][] {
  return [
    ['budget', `epsilon ${s.epsilon}, delta ${s.delta}`],
    ['spent', `epsilon ${s.spent} (pure ${s.pureEpsilon}, zCDP rho ${s.rho})`],
    ['remaining', `epsilon ${s.remaining}`],
    ['charges', String(s.charges)],
    ['refusals', String(s.refusals)],
  ];
}

export function privacyCommand(): Command {
  const cmd = new Command('privacy');
  cmd
    .command('status')
    .description('what is spent and left of a dataset budget ($NEUROCLUSTER_HOME/neurocluster.db)')
    .option('--dataset <id>', 'the dataset (its sha256:... content hash, or the name given to --dataset)')
    .action(async (opts: { dataset?: string }, command: Command) => {
      const flags = command.optsWithGlobals() as GlobalFlags;
      const accountant = defaultRuntime().privacyAccountant(await cliConfig(command, []));
      const statuses = opts.dataset === undefined ? accountant.list() : [accountant.status(opts.dataset)];
      if (flags.json) {
        const body = opts.dataset === undefined ? { datasets: statuses } : statuses[0];
        process.stdout.write(`${JSON.stringify(body)}\n`);
        return;
      }
      if (statuses.length === 0) {
        process.stdout.write('no dataset has been charged yet\n');
        return;
      }
      process.stdout.write(statuses.map((s) => table(`dataset ${s.dataset}`, rows(s))).join('\n'));
    });
  return cmd;
}
