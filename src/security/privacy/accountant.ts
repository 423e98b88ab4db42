/**
 * The privacy accountant: one budget per dataset (epsilon 10, delta 1e-5 unless configured when
 * the dataset is first charged), kept in the engine's SQLite store so a restart does not reset it
 * and two processes cannot spend the same budget twice (each charge is one IMMEDIATE transaction:
 * read what is spent, refuse or record, commit).
 *
 * Pure-DP charges add up in epsilon (sequential composition). Gaussian charges are zCDP and add up
 * in rho; they count against the budget converted at the budget's delta,
 * epsilon(rho) = rho + 2 sqrt(rho ln(1/delta)) (Bun and Steinke 2016, Proposition 1.3). So
 * `spent` = pure epsilon + epsilon(total rho), and `remaining` = budget - spent, both in epsilon.
 * Amounts are integer pico-units (see mechanisms.ts): a charge that would take `spent` past the
 * budget by one pico-unit is refused, before any noise is drawn.
 */
import { createHash } from 'node:crypto';
import type { Matrix } from '../../backends/backend.js';
import { metrics } from '../../observability/metrics.js';
import { PrivacyBudgetError } from '../../resilience/errors.js';
import type { Db } from '../../store/db.js';
import { fromPico, PICO, type PrivacyKind, toPico } from './mechanisms.js';

export interface PrivacyBudget {
  readonly epsilon: number;
  readonly delta: number;
}

export const DEFAULT_BUDGET: PrivacyBudget = { epsilon: 10, delta: 1e-5 };

export interface BudgetStatus {
  readonly dataset: string;
  /** The budget. */
  readonly epsilon: number;
  readonly delta: number;
  /** Epsilon spent: pure charges plus the zCDP charges converted at `delta`. */
  readonly spent: number;
  /** epsilon - spent. */
  readonly remaining: number;
  /** The parts of `spent`: pure epsilon, and total rho of the Gaussian charges. */
  readonly pureEpsilon: number;
  readonly rho: number;
  readonly charges: number;
  readonly refusals: number;
}

export interface PrivacyCharge {
  readonly kind: PrivacyKind;
  /** Pico-epsilon (pure) or pico-rho (zcdp). */
  readonly pico: bigint;
  readonly mechanism: string;
  /** What the charge paid for (`dp-kmeans`, `anonymize`, ...). */
  readonly purpose: string;
  readonly correlationId?: string | undefined;
}

/** epsilon(rho) at delta: rho + 2 sqrt(rho ln(1/delta)). */
export function epsilonOfRho(rho: number, delta: number): number {
  return rho + 2 * Math.sqrt(rho * Math.log(1 / delta));
}

/** The largest rho, in pico-units, whose epsilon at `delta` is at most `epsilon`. */
export function rhoForEpsilon(epsilon: number, delta: number): bigint {
  const l = Math.log(1 / delta);
  const rho = (Math.sqrt(l + epsilon) - Math.sqrt(l)) ** 2;
  let pico = BigInt(Math.floor(rho * 1e12));
  while (pico > 0n && epsilonOfRho(fromPico(pico), delta) > epsilon) pico--;
  return pico;
}

/**
 * The dataset ID of a matrix: `sha256:` and the hash of its shape and float64 values (the parsed
 * matrix, so the same data read from CSV or NPY is the same dataset).
 */
export function datasetId(m: Matrix): string {
  const hash = createHash('sha256');
  hash.update(`${m.rows}x${m.cols}\n`);
  const values = m.data instanceof Float64Array ? m.data : Float64Array.from(m.data);
  hash.update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  return `sha256:${hash.digest('hex')}`;
}

interface BudgetRow {
  epsilon_pico: number | bigint;
  delta: number;
  refusals: number;
}

/** Datasets whose budget gauges this process exports, at most this many (the latest). */
const GAUGED = 50;

export class PrivacyAccountant {
  private readonly gauged: string[] = [];

  constructor(
    private readonly db: Db,
    readonly defaults: PrivacyBudget = DEFAULT_BUDGET,
  ) {
    db.defaultSafeIntegers(false);
  }

  /** What is spent and left of a dataset's budget (the defaults, unspent, before its first charge). */
  status(dataset: string): BudgetStatus {
    const row = this.row(dataset);
    return this.statusOf(dataset, row ?? this.defaultRow());
  }

  /** Every dataset charged so far, by ID. */
  list(): BudgetStatus[] {
    const rows = this.db.prepare('SELECT dataset FROM privacy_budgets ORDER BY dataset').all() as {
      dataset: string;
    }[];
    return rows.map((r) => this.status(r.dataset));
  }

  /**
   * Charges `charge` to the dataset's budget, or refuses it (PrivacyBudgetError, the refusal
   * counted) when it would pass the budget; the budget is created with the defaults on first use.
   */
  charge(dataset: string, charge: PrivacyCharge): BudgetStatus {
    if (charge.pico <= 0n) throw new RangeError('a privacy charge must be positive');
    const outcome = this.db
      .transaction(() => {
        let row = this.row(dataset);
        if (!row) {
          row = this.defaultRow();
          this.db
            .prepare(
              'INSERT INTO privacy_budgets (dataset, epsilon_pico, delta, created_at) VALUES (?, ?, ?, ?)',
            )
            .run(dataset, BigInt(row.epsilon_pico), row.delta, new Date().toISOString());
        }
        const { pure, rho } = this.sums(dataset);
        const after =
          charge.kind === 'pure'
            ? spentPico(pure + charge.pico, rho, row.delta)
            : spentPico(pure, rho + charge.pico, row.delta);
        if (after > BigInt(row.epsilon_pico)) {
          this.db
            .prepare('UPDATE privacy_budgets SET refusals = refusals + 1 WHERE dataset = ?')
            .run(dataset);
          return { ok: false as const, after };
        }
        this.db
          .prepare(
            'INSERT INTO privacy_charges (dataset, kind, pico, mechanism, purpose, correlation_id, at) VALUES (?, ?, ?, ?, ?, ?, ?)',
          )
          .run(
            dataset,
            charge.kind,
            charge.pico,
            charge.mechanism,
            charge.purpose,
            charge.correlationId ?? null,
            new Date().toISOString(),
          );
        return { ok: true as const, after };
      })
      .immediate();
    const status = this.status(dataset);
    this.observe(status);
    if (!outcome.ok) {
      metrics.privacyRefusals.inc();
      const asked =
        charge.kind === 'pure' ? `epsilon ${fromPico(charge.pico)}` : `rho ${fromPico(charge.pico)}`;
      throw new PrivacyBudgetError(
        `dataset ${dataset}: ${asked} would bring the epsilon spent to ${fromPico(outcome.after)}, past its budget of ${status.epsilon} (spent ${status.spent}, remaining ${status.remaining}); refused before any noise was drawn`,
        { context: { dataset } },
      );
    }
    metrics.privacyCharges.inc({ mechanism: charge.mechanism });
    return status;
  }

  private defaultRow(): BudgetRow {
    return { epsilon_pico: toPico(this.defaults.epsilon), delta: this.defaults.delta, refusals: 0 };
  }

  private row(dataset: string): BudgetRow | undefined {
    return this.db
      .prepare('SELECT epsilon_pico, delta, refusals FROM privacy_budgets WHERE dataset = ?')
      .safeIntegers(true)
      .get(dataset) as BudgetRow | undefined;
  }

  private sums(dataset: string): { pure: bigint; rho: bigint; charges: number } {
    const rows = this.db
      .prepare(
        'SELECT kind, SUM(pico) AS total, COUNT(*) AS n FROM privacy_charges WHERE dataset = ? GROUP BY kind',
      )
      .safeIntegers(true)
      .all(dataset) as { kind: PrivacyKind; total: bigint; n: bigint }[];
    let pure = 0n;
    let rho = 0n;
    let charges = 0;
    for (const r of rows) {
      if (r.kind === 'pure') pure = r.total;
      else rho = r.total;
      charges += Number(r.n);
    }
    return { pure, rho, charges };
  }

  private statusOf(dataset: string, row: BudgetRow): BudgetStatus {
    const { pure, rho, charges } = this.sums(dataset);
    const budget = BigInt(row.epsilon_pico);
    const spent = spentPico(pure, rho, row.delta);
    return {
      dataset,
      epsilon: fromPico(budget),
      delta: row.delta,
      spent: fromPico(spent),
      remaining: fromPico(budget - spent),
      pureEpsilon: fromPico(pure),
      rho: fromPico(rho),
      charges,
      refusals: Number(row.refusals),
    };
  }

  /** The dataset's budget in the metrics (the latest {@link GAUGED} datasets of this process). */
  private observe(s: BudgetStatus): void {
    const at = this.gauged.indexOf(s.dataset);
    if (at >= 0) this.gauged.splice(at, 1);
    this.gauged.push(s.dataset);
    if (this.gauged.length > GAUGED) {
      const old = this.gauged.shift()!;
      metrics.privacySpent.remove({ dataset: old });
      metrics.privacyRemaining.remove({ dataset: old });
    }
    metrics.privacySpent.set({ dataset: s.dataset }, s.spent);
    metrics.privacyRemaining.set({ dataset: s.dataset }, s.remaining);
    metrics.privacyRatios.set(s.dataset, s.epsilon > 0 ? s.remaining / s.epsilon : 0);
  }
}

/** Pico-epsilon spent: pure plus the zCDP rho converted at delta (rounded up). */
function spentPico(pure: bigint, rho: bigint, delta: number): bigint {
  if (rho === 0n) return pure;
  return pure + BigInt(Math.ceil(epsilonOfRho(fromPico(rho), delta) * Number(PICO)));
}
