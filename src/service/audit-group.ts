/**
 * The service's audit records, written as group commits: the records that requests ask for in one
 * turn of the event loop go to the log together (one write, one fsync, one commit of its head: see
 * AuditLog.appendAll), and each request goes on once its own record is on disk. Under many
 * concurrent requests the fsync, the largest part of an accept, is paid once for all of them; a
 * lone request waits for nothing but its own.
 */
import type { AuditLog } from '../security/audit.js';
import type { AuditEvent } from '../security/audit-record.js';

interface Waiting {
  readonly event: AuditEvent;
  readonly done: (error?: unknown) => void;
}

export class AuditGroup {
  private waiting: Waiting[] = [];

  /** Writes to `log`; none (the log is off): every record is a no-op. */
  constructor(private readonly log: AuditLog | undefined) {}

  /** Appends `event` under `correlationId` with the others of this turn; settles once it is written. */
  append(event: AuditEvent, correlationId: string): Promise<void> {
    if (!this.log) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiting.push({
        event: { ...event, correlationId },
        done: (error) => (error === undefined ? resolve() : reject(error)),
      });
      // The first of a turn schedules the write, after the I/O callbacks of this turn have run.
      if (this.waiting.length === 1) setImmediate(() => this.flush());
    });
  }

  /**
   * Settles once every record asked for so far is written: a shutdown waits for the records of the
   * jobs that ended while it drained, so none is written after the service has closed.
   */
  async drain(): Promise<void> {
    // The write was scheduled with setImmediate: one scheduled now runs after it.
    if (this.waiting.length > 0) await new Promise<void>((resolve) => setImmediate(resolve));
  }

  private flush(): void {
    const group = this.waiting;
    this.waiting = [];
    try {
      this.log?.appendAll(group.map((w) => w.event));
    } catch (error) {
      for (const w of group) w.done(error);
      return;
    }
    for (const w of group) w.done();
  }
}
