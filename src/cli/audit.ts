/**
 * The CLI's audit trail: commands that read data, write a model, spend privacy budget or touch
 * keys append a record to the audit log (src/security/audit.ts) when they end, successful or not.
 * A record that cannot be written fails the command: work that is not audited is not done quietly.
 */
import type { Config } from '../config/schema.js';
import { isNeuroclusterError } from '../core/errors.js';
import { AuditLog, auditUnavailable } from '../security/audit.js';
import type { AuditEvent } from '../security/audit-record.js';

export function auditLog(config: Config): AuditLog | undefined {
  return config.audit.enabled ? AuditLog.open(config.audit) : undefined;
}

/** Appends the events; a log that cannot be written is an error of the command. */
export function audit(config: Config, events: readonly AuditEvent[]): void {
  const log = auditLog(config);
  if (!log) return;
  try {
    for (const e of events) log.append(e);
  } catch (cause) {
    throw auditUnavailable(cause);
  }
}

/** The outcome of an error for the audit record: a refusal is a denial. */
export function outcomeOf(error: unknown): 'failure' | 'denied' {
  return isNeuroclusterError(error) && (error.category === 'privacy-budget' || error.category === 'security')
    ? 'denied'
    : 'failure';
}

/** `details` of a failed command's record: its error code. */
export function errorDetails(error: unknown): Record<string, unknown> {
  return isNeuroclusterError(error) ? { code: error.code } : { error: String(error) };
}
