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
