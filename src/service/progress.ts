/** A fit's progress events as a job's progress: a phase, how much of it is done, of how much. */
import type { KMeansProgress } from '../cluster/kmeans.js';
import type { Config } from '../config/schema.js';
import type { EncodeProgress } from '../encoders/drive.js';
import type { PassProgress } from '../fit/result.js';
import type { JobProgress } from './jobs.js';

/** A fit's progress event as a job's phase, done and total; undefined for events it does not show. */
export function progressOf(
  event: EncodeProgress | KMeansProgress | PassProgress,
  config: Config,
): JobProgress | undefined {
  switch (event.type) {
    case 'encode':
      return { phase: `encode:${event.encoder}`, done: event.done, total: event.total };
    case 'iteration':
      return {
        phase: 'kmeans',
        done: event.run * config.kmeans.maxIter + event.iteration,
        total: config.kmeans.nInit * config.kmeans.maxIter,
      };
    case 'minibatch':
      return { phase: 'kmeans', done: event.step, total: event.steps };
    case 'pass':
      return { phase: `pass:${event.pass}`, done: event.rows, total: event.totalRows ?? 0 };
    default:
      return undefined;
  }
}

/** How often a job's progress goes to the main thread at most, within a phase. */
export const PROGRESS_EVERY_MS = 100;

/**
 * Paces a job's progress: the first report of each phase goes at once, the others at most every
 * `everyMs`, the latest held until then. A K-means of ten runs reports a hundred iterations within
 * milliseconds, and each report is a message to the main thread, a write to the store and an event
 * to every open stream: on the thread that accepts requests.
 */
export class ProgressPacer {
  private last = Number.NEGATIVE_INFINITY;
  private phase: string | undefined;
  private held: JobProgress | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly send: (progress: JobProgress) => void,
    private readonly everyMs = PROGRESS_EVERY_MS,
  ) {}

  offer(progress: JobProgress): void {
    const now = Date.now();
    if (progress.phase !== this.phase || now - this.last >= this.everyMs) {
      this.emit(progress, now);
      return;
    }
    this.held = progress;
    this.timer ??= setTimeout(
      () => {
        this.timer = undefined;
        if (this.held) this.emit(this.held, Date.now());
      },
      this.everyMs - (now - this.last),
    ).unref();
  }

  /** Drops what is held: the job has ended, and its end is reported instead. */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.held = undefined;
  }

  private emit(progress: JobProgress, now: number): void {
    this.stop();
    this.phase = progress.phase;
    this.last = now;
    this.send(progress);
  }
}
