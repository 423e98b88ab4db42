/**
 * The error tracker: every error the resilience layer sees is recorded once, counted by category
 * and code over sliding windows, kept on its operation's timeline (by correlation ID), and checked
 * against alert rules. An alert is an `'alert'` event, raised when a rule's count in its window
 * reaches the threshold and raised again only after the count has fallen below it.
 */
import { EventEmitter } from 'node:events';
import { ERROR_CODES, type ErrorCategory, type ErrorCode, type Severity } from '../core/error-codes.js';
import type { NeuroclusterError } from '../core/errors.js';
import { notify, type ResilienceObserver } from './events.js';

/** One recorded error. */
export interface ErrorRecord {
  readonly errorId: string;
  readonly code: ErrorCode;
  readonly category: ErrorCategory;
  readonly severity: Severity;
  readonly message: string;
  readonly correlationId: string | undefined;
  readonly phase: string | undefined;
  readonly backend: string | undefined;
  /** Milliseconds since the epoch. */
  readonly at: number;
}

/** Alert when `threshold` errors (of this category, or all) happen within `windowMs`. */
export interface AlertRule {
  readonly name: string;
  readonly threshold: number;
  readonly windowMs: number;
  readonly category?: ErrorCategory;
}

export interface Alert {
  readonly rule: AlertRule;
  readonly count: number;
  readonly at: number;
}

export interface ErrorCounts {
  readonly total: number;
  readonly byCategory: Partial<Record<ErrorCategory, number>>;
  readonly byCode: Partial<Record<ErrorCode, number>>;
}

export interface ErrorTrackerOptions {
  /** The window of {@link ErrorTracker.counts} by default. */
  readonly windowMs?: number;
  readonly rules?: readonly AlertRule[];
  /** Records kept at most (the oldest go first); timelines keep theirs within the same bound. */
  readonly maxRecords?: number;
  readonly now?: () => number;
  /** Told of every error recorded and every alert that starts firing (the runtime's metrics listen). */
  readonly observer?: ResilienceObserver;
}

export class ErrorTracker extends EventEmitter<{ alert: [Alert] }> {
  private readonly windowMs: number;
  private readonly rules: readonly AlertRule[];
  private readonly maxRecords: number;
  private readonly now: () => number;
  private readonly observer: ResilienceObserver | undefined;
  private records: ErrorRecord[] = [];
  private readonly byId = new Map<string, ErrorRecord>();
  private readonly firing = new Set<string>();

  constructor(options: ErrorTrackerOptions = {}) {
    super();
    this.windowMs = options.windowMs ?? 60_000;
    this.rules = options.rules ?? [];
    this.maxRecords = options.maxRecords ?? 10_000;
    this.now = options.now ?? Date.now;
    this.observer = options.observer;
  }

  /** Records an error (once: the same instance again is ignored) and checks the alert rules. */
  record(error: NeuroclusterError): ErrorRecord {
    const known = this.byId.get(error.errorId);
    if (known) return known;
    const record: ErrorRecord = {
      errorId: error.errorId,
      code: error.code,
      category: error.category,
      severity: error.severity,
      message: error.message,
      correlationId: error.correlationId,
      phase: typeof error.context.phase === 'string' ? error.context.phase : undefined,
      backend: typeof error.context.backend === 'string' ? error.context.backend : undefined,
      at: this.now(),
    };
    this.records.push(record);
    this.byId.set(record.errorId, record);
    notify(this.observer, 'error', record.category, record.code);
    if (this.records.length > this.maxRecords) {
      for (const old of this.records.splice(0, this.records.length - this.maxRecords))
        this.byId.delete(old.errorId);
    }
    this.checkRules();
    return record;
  }

  /** Errors within the last `windowMs` (the tracker's window by default), by category and code. */
  counts(windowMs = this.windowMs): ErrorCounts {
    const since = this.now() - windowMs;
    const byCategory: Partial<Record<ErrorCategory, number>> = {};
    const byCode: Partial<Record<ErrorCode, number>> = {};
    let total = 0;
    for (const r of this.records) {
      if (r.at < since) continue;
      total++;
      byCategory[r.category] = (byCategory[r.category] ?? 0) + 1;
      byCode[r.code] = (byCode[r.code] ?? 0) + 1;
    }
    return { total, byCategory, byCode };
  }

  /** The errors of one operation, oldest first. */
  timeline(correlationId: string): ErrorRecord[] {
    return this.records.filter((r) => r.correlationId === correlationId);
  }

  /**
   * What to do about a recorded error: its code's recovery actions, and, when its kind keeps
   * happening (three or more in the window), a line saying so.
   */
  suggestRecoveryActions(errorId: string): string[] {
    const record = this.byId.get(errorId);
    if (!record) return [];
    const actions: string[] = [...ERROR_CODES[record.code].recovery];
    const recent = this.counts().byCode[record.code] ?? 0;
    if (recent >= 3) {
      const where = record.backend ? ` on backend ${record.backend}` : '';
      actions.push(
        `${record.code} happened ${recent} times in the last ${Math.round(this.windowMs / 1000)} s${where}: a persistent fault, not a transient one.`,
      );
    }
    return actions;
  }

  private checkRules(): void {
    const now = this.now();
    for (const rule of this.rules) {
      const since = now - rule.windowMs;
      let count = 0;
      for (const r of this.records) {
        if (r.at >= since && (!rule.category || r.category === rule.category)) count++;
      }
      if (count < rule.threshold) {
        this.firing.delete(rule.name);
        continue;
      }
      if (this.firing.has(rule.name)) continue;
      this.firing.add(rule.name);
      notify(this.observer, 'alert', rule.name);
      // A listener that throws must not break the request that recorded the error.
      try {
        this.emit('alert', { rule, count, at: now });
      } catch {
        // ignored on purpose: alerts are advisory
      }
    }
  }
}
