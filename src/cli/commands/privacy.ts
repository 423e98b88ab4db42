/**
 * `neurocluster privacy status [--dataset <id>] [--tenant <tenant>]`: the privacy budget of one
 * dataset, or of every dataset charged in this NEUROCLUSTER_HOME (of one service tenant's, with
 * `--tenant`).
 */
import { Command } from 'commander';
import { defaultRuntime } from '../../runtime/runtime.js';
import { type BudgetStatus, budgetName, type PrivacyAccountant } from '../../security/privacy/accountant.js';
import { tenantBudgets, tenantNamespace } from '../../service/tenants.js';
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

/** The budgets asked for: one dataset's or every one, of one service tenant or of the whole home. */
function statusesOf(
  accountant: PrivacyAccountant,
  opts: { dataset?: string; tenant?: string },
): BudgetStatus[] {
  if (opts.tenant === undefined)
    return opts.dataset === undefined ? accountant.list() : [accountant.status(opts.dataset)];
  if (opts.dataset === undefined) return tenantBudgets(accountant.list(), opts.tenant);
  // Named as the tenant knows it, its namespace aside.
  const name = budgetName(tenantNamespace(opts.tenant), opts.dataset);
  return [{ ...accountant.status(name), dataset: opts.dataset }];
}

export function privacyCommand(): Command {
  const cmd = new Command('privacy');
  cmd
    .command('status')
    .description('what is spent and left of a dataset budget ($NEUROCLUSTER_HOME/neurocluster.db)')
    .option('--dataset <id>', 'the dataset (its sha256:... content hash, or the name given to --dataset)')
    .option('--tenant <tenant>', "a service tenant's budgets (its datasets by their own names)")
    .action(async (opts: { dataset?: string; tenant?: string }, command: Command) => {
      const flags = command.optsWithGlobals() as GlobalFlags;
      const accountant = defaultRuntime().privacyAccountant(await cliConfig(command, []));
      const statuses = statusesOf(accountant, opts);
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
