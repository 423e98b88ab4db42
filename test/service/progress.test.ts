import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { JobProgress } from '../../src/service/jobs.js';
import { ProgressPacer } from '../../src/service/progress.js';

describe('a job’s progress, paced', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const at = (phase: string, done: number): JobProgress => ({ phase, done, total: 100 });

  it('sends the first report of each phase at once and the latest of the others once per interval', () => {
    const sent: JobProgress[] = [];
    const pacer = new ProgressPacer((p) => sent.push(p), 100);
    pacer.offer(at('encode:esn', 1));
    for (let i = 2; i <= 50; i++) pacer.offer(at('encode:esn', i));
    expect(sent).toEqual([at('encode:esn', 1)]);
    vi.advanceTimersByTime(99);
    expect(sent).toHaveLength(1);
    vi.advanceTimersByTime(1);
    // The latest held, not every one.
    expect(sent).toEqual([at('encode:esn', 1), at('encode:esn', 50)]);
    // A new phase goes at once, whatever the interval, and drops what the old one held.
    pacer.offer(at('encode:esn', 60));
    pacer.offer(at('kmeans', 1));
    expect(sent.at(-1)).toEqual(at('kmeans', 1));
    vi.advanceTimersByTime(500);
    expect(sent).toEqual([at('encode:esn', 1), at('encode:esn', 50), at('kmeans', 1)]);
  });

  it('sends nothing held once stopped (the job ended, and its end is what is reported)', () => {
    const sent: JobProgress[] = [];
    const pacer = new ProgressPacer((p) => sent.push(p), 100);
    pacer.offer(at('kmeans', 1));
    pacer.offer(at('kmeans', 2));
    pacer.stop();
    vi.advanceTimersByTime(1000);
    expect(sent).toEqual([at('kmeans', 1)]);
  });
});
