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
 *
 * The ledger is signed, like the audit log: every budget row and every charge row carries an
 * HMAC-SHA256 under a key derived from the keyring (`key_id` names the key); each charge's HMAC
 * binds the HMAC of the dataset's charge before it, and the dataset's budget row (signed) holds
 * how many charges it has and the last one's HMAC; a signed head holds how many budgets there are
 * and a digest of their HMACs. An accountant verifies the whole ledger on first use, and on every
 * charge or status the head and that dataset: an edited, forged or deleted row, or a deleted
 * head, is refused with NEUROCLUSTER_ERR_INTEGRITY (and nothing more is charged or reported)
 * instead of looking like a smaller spend. A dataset the ledger has never seen but whose charges
 * other records show (`recordedCharges`: the audit log, see api.ts) is refused the same way: the
 * store was deleted or replaced. What this cannot stop (the owner of the keyring and the data) is
 * in the trust model of docs/privacy.md.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { PrivacyBudgetError, SecurityError } from '../../core/errors.js';
import type { Matrix } from '../../core/matrix.js';
import { metrics } from '../../observability/metrics.js';
import type { Db } from '../../store/db.js';
import { Keyring } from '../keyring.js';
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

export interface AccountantOptions {
  /** Signs and verifies the ledger; the keyring of this environment by default. */
  readonly keyring?: Keyring;
  /**
   * How many charges of a dataset other records show (the audit log's `privacy.spend` records):
   * a dataset the ledger has no budget for, yet charged elsewhere, is refused (the store was lost).
   */
  readonly recordedCharges?: (dataset: string) => number;
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
 * The dataset ID of a matrix: `sha256:` and the SHA-256 of its shape and its rows (float64, the
 * parsed values, so the same data read from CSV or NPY is the same dataset) in a canonical order,
 * so that the same rows in any order are the same dataset (a multiset: a repeated row counts).
 * The order: by a 32-bit fingerprint of each row, rows of equal fingerprint by their bytes.
 */
/**
 * The name a budget is kept under: the dataset's, within a namespace when there is one (the
 * service's tenants each have theirs: the same data sent by two tenants are two budgets).
 */
export function budgetName(namespace: string | undefined, dataset: string): string {
  return namespace === undefined ? dataset : `${namespace}/${dataset}`;
}

export function datasetId(m: Matrix): string {
  const { rows: n, cols: d } = m;
  // -0 and 0 are one value (a format conversion may write either): hashed as 0.
  let hasNegativeZero = false;
  for (let i = 0; i < m.data.length && !hasNegativeZero; i++) hasNegativeZero = Object.is(m.data[i], -0);
  const values =
    m.data instanceof Float64Array && !hasNegativeZero ? m.data : Float64Array.from(m.data, (v) => v + 0);
  const words = new Uint32Array(values.buffer, values.byteOffset, n * d * 2);
  const w = 2 * d;
  // Sort keys fingerprint * 2^indexBits + row, exact in a float64 (53 bits), sorted natively.
  const indexBits = Math.max(1, Math.ceil(Math.log2(n + 1)));
  const spread = 2 ** indexBits;
  const fingerprints = 2 ** Math.min(32, 53 - indexBits);
  const keys = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let h = 0x811c9dc5 ^ d;
    for (let j = i * w; j < (i + 1) * w; j++) {
      h = Math.imul(h ^ words[j]!, 0x5bd1e995);
      h ^= h >>> 15;
    }
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) ^ (h >>> 16);
    keys[i] = ((h >>> 0) % fingerprints) * spread + i;
  }
  keys.sort();
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = keys[i]! % spread;
  const byBytes = (a: number, b: number) => {
    for (let j = 0; j < w; j++) {
      const x = words[a * w + j]!;
      const y = words[b * w + j]!;
      if (x !== y) return x < y ? -1 : 1;
    }
    return 0;
  };
  for (let s = 0; s < n; ) {
    const fingerprint = Math.floor(keys[s]! / spread);
    let e = s + 1;
    while (e < n && Math.floor(keys[e]! / spread) === fingerprint) e++;
    if (e - s > 1) order.subarray(s, e).sort(byBytes);
    s = e;
  }
  const hash = createHash('sha256');
  hash.update(`${n}x${d}\n`);
  const chunkRows = Math.max(1, Math.floor(65_536 / (8 * d)));
  const chunk = new Float64Array(chunkRows * d);
  for (let s = 0; s < n; s += chunkRows) {
    const e = Math.min(n, s + chunkRows);
    for (let i = s; i < e; i++) chunk.set(values.subarray(order[i]! * d, (order[i]! + 1) * d), (i - s) * d);
    hash.update(new Uint8Array(chunk.buffer, 0, (e - s) * d * 8));
  }
  return `sha256:${hash.digest('hex')}`;
}

interface BudgetRow {
  epsilon_pico: bigint;
  delta: number;
  refusals: bigint;
  created_at: string;
  /** How many charges the dataset has, and the HMAC of its last one (GENESIS before any). */
  charge_count: bigint;
  last_mac: string;
}

interface ChargeRow {
  dataset: string;
  kind: PrivacyKind;
  pico: bigint;
  mechanism: string;
  purpose: string;
  correlation_id: string | null;
  at: string;
}

interface Signed {
  key_id: string | null;
  mac: string | null;
}

/** One dataset's part of the ledger, as verified: its budget row (none before its first charge) and sums. */
interface Account {
  readonly row: (BudgetRow & Signed) | undefined;
  readonly pure: bigint;
  readonly rho: bigint;
}

/** Datasets whose budget gauges this process exports, at most this many (the latest). */
const GAUGED = 50;

/** The `prev` of a dataset's first charge. */
const GENESIS = '0'.repeat(64);

/** What each row's HMAC signs: its fields in a fixed order (amounts as decimal strings). */
const budgetText = (dataset: string, b: BudgetRow) =>
  JSON.stringify([
    'budget',
    dataset,
    String(b.epsilon_pico),
    b.delta,
    b.created_at,
    String(b.refusals),
    String(b.charge_count),
    b.last_mac,
  ]);
const chargeText = (prev: string, c: ChargeRow) =>
  JSON.stringify([
    'charge',
    prev,
    c.dataset,
    c.kind,
    String(c.pico),
    c.mechanism,
    c.purpose,
    c.correlation_id,
    c.at,
  ]);
const headText = (budgets: number, digest: string) => JSON.stringify(['head', budgets, digest]);

export class PrivacyAccountant {
  private readonly gauged: string[] = [];
  private readonly keyring: Keyring;
  private readonly keys = new Map<string, Buffer>();
  /** Whether this accountant has verified every dataset of the ledger (once, on first use). */
  private checkedAll = false;

  constructor(
    private readonly db: Db,
    readonly defaults: PrivacyBudget = DEFAULT_BUDGET,
    private readonly options: AccountantOptions = {},
  ) {
    db.defaultSafeIntegers(false);
    this.keyring = options.keyring ?? Keyring.open();
  }

  /** What is spent and left of a dataset's budget (the defaults, unspent, before its first charge). */
  status(dataset: string): BudgetStatus {
    return this.db.transaction(() => this.statusOf(dataset, this.account(dataset)))();
  }

  /** Every dataset charged so far, by ID (the whole ledger verified). */
  list(): BudgetStatus[] {
    return this.db.transaction(() => {
      this.checkHead();
      return this.datasets().map((d) => this.statusOf(d.dataset, this.checkDataset(d.dataset)));
    })();
  }

  /**
   * Charges `charge` to the dataset's budget, or refuses it (PrivacyBudgetError, the refusal
   * counted) when it would pass the budget; the budget is created with the defaults on first use.
   * A ledger that does not verify is refused (SecurityError, NEUROCLUSTER_ERR_INTEGRITY).
   */
  charge(dataset: string, charge: PrivacyCharge): BudgetStatus {
    if (charge.pico <= 0n) throw new RangeError('a privacy charge must be positive');
    const outcome = this.db
      .transaction(() => {
        const account = this.account(dataset);
        let row = account.row;
        if (!row) {
          const recorded = this.options.recordedCharges?.(dataset) ?? 0;
          if (recorded > 0) {
            throw integrity(
              `it has no record of dataset ${dataset}, yet the audit log records ${recorded} charge${recorded === 1 ? '' : 's'} of it: the store was deleted or replaced`,
            );
          }
          row = this.signBudget(dataset, {
            epsilon_pico: toPico(this.defaults.epsilon),
            delta: this.defaults.delta,
            refusals: 0n,
            created_at: new Date().toISOString(),
            charge_count: 0n,
            last_mac: GENESIS,
          });
          this.db
            .prepare(
              `INSERT INTO privacy_budgets (dataset, epsilon_pico, delta, created_at, refusals, charge_count, last_mac, key_id, mac)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
            )
            .run(
              dataset,
              row.epsilon_pico,
              row.delta,
              row.created_at,
              row.refusals,
              row.charge_count,
              row.last_mac,
              row.key_id,
              row.mac,
            );
        }
        let { pure, rho } = account;
        const after =
          charge.kind === 'pure'
            ? spentPico(pure + charge.pico, rho, row.delta)
            : spentPico(pure, rho + charge.pico, row.delta);
        const ok = after <= row.epsilon_pico;
        if (ok) {
          const c: ChargeRow = {
            dataset,
            kind: charge.kind,
            pico: charge.pico,
            mechanism: charge.mechanism,
            purpose: charge.purpose,
            correlation_id: charge.correlationId ?? null,
            at: new Date().toISOString(),
          };
          const keyId = this.keyring.current().id;
          const mac = this.mac(keyId, chargeText(row.last_mac, c));
          this.db
            .prepare(
              'INSERT INTO privacy_charges (dataset, kind, pico, mechanism, purpose, correlation_id, at, key_id, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
            )
            .run(c.dataset, c.kind, c.pico, c.mechanism, c.purpose, c.correlation_id, c.at, keyId, mac);
          row = this.signBudget(dataset, { ...row, charge_count: row.charge_count + 1n, last_mac: mac });
          if (charge.kind === 'pure') pure += charge.pico;
          else rho += charge.pico;
        } else {
          row = this.signBudget(dataset, { ...row, refusals: row.refusals + 1n });
        }
        this.db
          .prepare(
            'UPDATE privacy_budgets SET refusals = ?, charge_count = ?, last_mac = ?, key_id = ?, mac = ? WHERE dataset = ?',
          )
          .run(row.refusals, row.charge_count, row.last_mac, row.key_id, row.mac, dataset);
        this.signHead();
        return { ok, after, status: this.statusOf(dataset, { row, pure, rho }) };
      })
      .immediate();
    const { status } = outcome;
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

  /** HMAC-SHA256 of `text` under the ledger key derived from key `keyId` (retired keys verify). */
  private mac(keyId: string, text: string): string {
    let key = this.keys.get(keyId);
    if (!key) {
      key = this.keyring.derived(keyId, 'privacy-ledger', true);
      this.keys.set(keyId, key);
    }
    return createHmac('sha256', key).update(text).digest('hex');
  }

  /** Whether `mac` is the HMAC of `text` under the key it names. */
  private signs(keyId: string | null, mac: string | null, text: string): boolean {
    if (keyId === null || mac === null) return false;
    let expected: string;
    try {
      expected = this.mac(keyId, text);
    } catch {
      return false; // a key the keyring does not have
    }
    const a = Buffer.from(mac, 'hex');
    const b = Buffer.from(expected, 'hex');
    return a.length === b.length && a.length > 0 && timingSafeEqual(a, b);
  }

  private signBudget(dataset: string, b: BudgetRow): BudgetRow & Signed {
    const keyId = this.keyring.current().id;
    return { ...b, key_id: keyId, mac: this.mac(keyId, budgetText(dataset, b)) };
  }

  /** Every budget row's dataset and HMAC, by dataset. */
  private datasets(): { dataset: string; mac: string | null }[] {
    return this.db.prepare('SELECT dataset, mac FROM privacy_budgets ORDER BY dataset').all() as {
      dataset: string;
      mac: string | null;
    }[];
  }

  /** What the head signs: how many budgets, and a SHA-256 over each one's dataset and HMAC. */
  private headOf(): { budgets: number; text: string } {
    const rows = this.datasets();
    const hash = createHash('sha256');
    for (const r of rows) hash.update(`${r.dataset}\0${r.mac}\n`);
    return { budgets: rows.length, text: headText(rows.length, hash.digest('hex')) };
  }

  private signHead(): void {
    const keyId = this.keyring.current().id;
    const { budgets, text } = this.headOf();
    this.db
      .prepare(
        `INSERT INTO privacy_head (id, budgets, key_id, mac) VALUES (1, ?, ?, ?)
         ON CONFLICT(id) DO UPDATE SET budgets = excluded.budgets, key_id = excluded.key_id, mac = excluded.mac`,
      )
      .run(budgets, keyId, this.mac(keyId, text));
  }

  /**
   * One dataset's account, verified (call inside a transaction, for one snapshot): the head (no
   * budget row added, removed or replaced), no charge without a budget, the dataset's budget row,
   * and its chain of charges. The first call verifies every dataset of the ledger.
   */
  private account(dataset: string): Account {
    this.checkAll();
    this.checkHead();
    return this.checkDataset(dataset);
  }

  /** Verifies every dataset, once per accountant (a command, or a service's start). */
  private checkAll(): void {
    if (this.checkedAll) return;
    this.checkHead();
    for (const { dataset } of this.datasets()) this.checkDataset(dataset);
    this.checkedAll = true;
  }

  /** The head signs the budget rows there are; every charge has a budget. */
  private checkHead(): void {
    const head = this.db.prepare('SELECT budgets, key_id, mac FROM privacy_head WHERE id = 1').get() as
      | { budgets: number; key_id: string; mac: string }
      | undefined;
    const { budgets, text } = this.headOf();
    if (!head) {
      if (budgets > 0) throw integrity('its signed head is missing (it was deleted)');
    } else if (!this.signs(head.key_id, head.mac, text)) {
      throw integrity(
        `it holds ${budgets} budget${budgets === 1 ? '' : 's'}, its signed head ${head.budgets}: a budget was deleted, added or replaced, or an older copy restored`,
      );
    }
    const orphan = this.db
      .prepare(
        'SELECT dataset FROM privacy_charges WHERE dataset NOT IN (SELECT dataset FROM privacy_budgets) LIMIT 1',
      )
      .get() as { dataset: string } | undefined;
    if (orphan) throw integrity(`dataset ${orphan.dataset} has charges but no budget (it was deleted)`);
  }

  /** A dataset's budget row and its chain of charges, up to the count and last HMAC the row holds. */
  private checkDataset(dataset: string): Account {
    const row = this.db
      .prepare(
        'SELECT epsilon_pico, delta, created_at, refusals, charge_count, last_mac, key_id, mac FROM privacy_budgets WHERE dataset = ?',
      )
      .safeIntegers(true)
      .get(dataset) as (BudgetRow & Signed) | undefined;
    if (!row) return { row: undefined, pure: 0n, rho: 0n };
    if (!this.signs(row.key_id, row.mac, budgetText(dataset, row)))
      throw integrity(`the budget of dataset ${dataset} was changed or written outside neurocluster`);
    let pure = 0n;
    let rho = 0n;
    let count = 0n;
    let last = GENESIS;
    const charges = this.db
      .prepare(
        'SELECT dataset, kind, pico, mechanism, purpose, correlation_id, at, key_id, mac FROM privacy_charges WHERE dataset = ? ORDER BY id',
      )
      .safeIntegers(true)
      .iterate(dataset) as IterableIterator<ChargeRow & Signed>;
    for (const c of charges) {
      count++;
      if (!this.signs(c.key_id, c.mac, chargeText(last, c))) {
        throw integrity(
          `charge ${count} of dataset ${dataset} was changed or written outside neurocluster, or the charge before it was deleted`,
        );
      }
      if (c.kind === 'pure') pure += c.pico;
      else rho += c.pico;
      last = c.mac!;
    }
    if (count !== row.charge_count || last !== row.last_mac) {
      throw integrity(
        `dataset ${dataset} has ${count} charges, its signed budget ${row.charge_count}: the newest were deleted`,
      );
    }
    return { row, pure, rho };
  }

  private statusOf(dataset: string, account: Account): BudgetStatus {
    const { row, pure, rho } = account;
    const budget = row?.epsilon_pico ?? toPico(this.defaults.epsilon);
    const delta = row?.delta ?? this.defaults.delta;
    const spent = spentPico(pure, rho, delta);
    return {
      dataset,
      epsilon: fromPico(budget),
      delta,
      spent: fromPico(spent),
      remaining: fromPico(budget - spent),
      pureEpsilon: fromPico(pure),
      rho: fromPico(rho),
      charges: Number(row?.charge_count ?? 0n),
      refusals: Number(row?.refusals ?? 0n),
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

/** A ledger that does not verify: refused, never read as a smaller spend. */
function integrity(what: string): SecurityError {
  return new SecurityError(
    `the privacy ledger does not verify: ${what}; no budget is charged or reported until neurocluster.db is restored from a backup (the audit log's privacy.spend records show what was charged)`,
    { integrity: true },
  );
}

/** Pico-epsilon spent: pure plus the zCDP rho converted at delta (rounded up). */
function spentPico(pure: bigint, rho: bigint, delta: number): bigint {
  if (rho === 0n) return pure;
  return pure + BigInt(Math.ceil(epsilonOfRho(fromPico(rho), delta) * Number(PICO)));
}
