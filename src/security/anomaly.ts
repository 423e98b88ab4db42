/**
 * Security anomaly detection over the audit stream. Each rule looks at a new record and the
 * recent ones before it; a match is a security event: a metric (`neurocluster_security_events_total
 * {rule}`), an audit record (`security.anomaly`) and an `'event'` for listeners. It never blocks
 * the operation that triggered it: rules are cheap and their errors are swallowed, listeners are
 * called later (setImmediate), and one that throws cannot hurt anything.
 *
 * Built-in rules (pluggable: pass your own `AnomalyRule`s):
 * - `failure-burst`: `burstCount` (5) failures or denials by one actor within `burstWindowMs` (60 s);
 * - `budget-probing`: `probeCount` (3) refused privacy spends by one actor within 10 minutes;
 * - `bad-input`: a read refused for its size or shape (NEUROCLUSTER_ERR_DATA_SHAPE) or format;
 * - `outside-roots`: a read of a path outside the data roots;
 * - `unusual-volume`: an actor's reads in the last hour above `volumeFactor` (5) times their mean
 *   per hour over the history the detector holds (at least 3 earlier hours, at least 10 reads).
 */
import { EventEmitter } from 'node:events';
import { metrics } from '../observability/metrics.js';
import type { AuditRecord } from './audit-record.js';

export interface SecurityEvent {
  readonly rule: string;
  readonly actor: string;
  readonly message: string;
  /** Sequence numbers of the records that made the case. */
  readonly records: readonly number[];
  readonly at: string;
}

export interface AnomalyRule {
  readonly name: string;
  /** A security event when `record` (with `recent` before it, oldest first) makes one. */
  check(record: AuditRecord, recent: readonly AuditRecord[]): Omit<SecurityEvent, 'rule' | 'at'> | undefined;
}

export interface AnomalySettings {
  readonly burstCount: number;
  readonly burstWindowMs: number;
  readonly probeCount: number;
  readonly volumeFactor: number;
}

export const DEFAULT_ANOMALY: AnomalySettings = {
  burstCount: 5,
  burstWindowMs: 60_000,
  probeCount: 3,
  volumeFactor: 5,
};

const t = (r: AuditRecord) => Date.parse(r.at);

function within(
  recent: readonly AuditRecord[],
  record: AuditRecord,
  ms: number,
  keep: (r: AuditRecord) => boolean,
) {
  const since = t(record) - ms;
  return [...recent.filter((r) => t(r) >= since && keep(r)), record];
}

export function builtinRules(s: AnomalySettings = DEFAULT_ANOMALY): AnomalyRule[] {
  return [
    {
      name: 'failure-burst',
      check(record, recent) {
        if (record.outcome === 'success') return undefined;
        const bad = within(
          recent,
          record,
          s.burstWindowMs,
          (r) => r.actor === record.actor && r.outcome !== 'success',
        );
        if (bad.length !== s.burstCount) return undefined; // once per burst, when it reaches the count
        return {
          actor: record.actor,
          message: `${bad.length} failures or denials by ${record.actor} within ${s.burstWindowMs / 1000} s`,
          records: bad.map((r) => r.seq),
        };
      },
    },
    {
      name: 'budget-probing',
      check(record, recent) {
        if (record.action !== 'privacy.spend' || record.outcome !== 'denied') return undefined;
        const denied = within(
          recent,
          record,
          600_000,
          (r) => r.actor === record.actor && r.action === 'privacy.spend' && r.outcome === 'denied',
        );
        if (denied.length !== s.probeCount) return undefined;
        return {
          actor: record.actor,
          message: `${denied.length} refused privacy spends by ${record.actor} within 10 minutes: probing the budget`,
          records: denied.map((r) => r.seq),
        };
      },
    },
    {
      name: 'bad-input',
      check(record) {
        const code = record.details.code;
        if (
          record.action !== 'data.read' ||
          !['NEUROCLUSTER_ERR_DATA_SHAPE', 'NEUROCLUSTER_ERR_DATA_FORMAT'].includes(String(code))
        ) {
          return undefined;
        }
        return {
          actor: record.actor,
          message: `${record.actor} gave ${record.resource}: ${code}`,
          records: [record.seq],
        };
      },
    },
    {
      name: 'outside-roots',
      check(record) {
        if (record.action !== 'data.read' || record.details.code !== 'NEUROCLUSTER_ERR_SECURITY_PATH')
          return undefined;
        return {
          actor: record.actor,
          message: `${record.actor} tried to read ${record.resource}, outside the data roots`,
          records: [record.seq],
        };
      },
    },
    {
      name: 'unusual-volume',
      check(record, recent) {
        if (record.action !== 'data.read') return undefined;
        const hour = 3_600_000;
        const now = t(record);
        const reads = [...recent, record].filter((r) => r.actor === record.actor && r.action === 'data.read');
        const current = reads.filter((r) => t(r) > now - hour).length;
        const earlier = reads.filter((r) => t(r) <= now - hour);
        if (new Set(earlier.map((r) => Math.floor(t(r) / hour))).size < 3) return undefined;
        // Reads an hour over the span the earlier ones cover.
        const mean = earlier.length / Math.max(1, (now - hour - t(earlier[0]!)) / hour);
        const threshold = Math.max(10, s.volumeFactor * mean);
        // Once, when the count crosses the threshold.
        if (!(current >= threshold && current - 1 < threshold)) return undefined;
        return {
          actor: record.actor,
          message: `${record.actor} read ${current} times in the last hour, ${s.volumeFactor}x their mean of ${mean.toFixed(1)} an hour`,
          records: [record.seq],
        };
      },
    },
  ];
}

export class AnomalyDetector extends EventEmitter<{ event: [SecurityEvent] }> {
  private readonly recent: AuditRecord[] = [];

  constructor(
    readonly rules: readonly AnomalyRule[] = builtinRules(),
    /** Records kept to judge new ones by (the latest). */
    private readonly keep = 5000,
  ) {
    super();
  }

  /** Feeds earlier records (a new process reads the tail of the log), without judging them. */
  prime(records: readonly AuditRecord[]): void {
    this.recent.push(...records.slice(-this.keep));
  }

  /** Judges a new record; returns the events it raised (listeners hear them later). */
  observe(record: AuditRecord): SecurityEvent[] {
    const events: SecurityEvent[] = [];
    if (record.action !== 'security.anomaly') {
      for (const rule of this.rules) {
        try {
          const hit = rule.check(record, this.recent);
          if (hit) events.push({ ...hit, rule: rule.name, at: record.at });
        } catch {
          // a rule that fails judges nothing; the operation goes on
        }
      }
    }
    this.recent.push(record);
    if (this.recent.length > this.keep) this.recent.splice(0, this.recent.length - this.keep);
    for (const e of events) {
      metrics.securityEvents.inc({ rule: e.rule });
      setImmediate(() => {
        try {
          this.emit('event', e);
        } catch {
          // a listener that throws cannot break the caller
        }
      });
    }
    return events;
  }
}
