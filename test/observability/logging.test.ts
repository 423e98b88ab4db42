import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { NeuromorphicClusterer } from '../../src/clusterer.js';
import { createLogger, operationLogger } from '../../src/observability/logger.js';
import { OperationTracker } from '../../src/observability/operations.js';
import { ROOT, tempDir } from '../helpers.js';

const IRIS = join(ROOT, 'examples/iris.csv');

/** A destination that keeps the lines. */
function sink() {
  const lines: Record<string, unknown>[] = [];
  return { lines, stream: { write: (line: string) => lines.push(JSON.parse(line)) } };
}

describe('logs', () => {
  it('every line of an operation carries its correlation ID, the caller-supplied one when given', async () => {
    const { lines, stream } = sink();
    const clusterer = new NeuromorphicClusterer({
      method: 'esn',
      nClusters: 3,
      backend: 'js',
      logger: createLogger({ level: 'debug', destination: stream }),
      // Lines from the data loader (the species column), the resilience layer (a fault and the
      // fallback), the quality gates, and the debug summary.
      config: {
        faults: { inject: 'oom' },
        qualityGates: { minSilhouette: 0.99 },
      },
    });
    const result = await clusterer.fit(IRIS, { correlationId: 'request-42' });
    expect(result.correlationId).toBe('request-42');
    const messages = lines.map((l) => String(l.msg));
    expect(messages).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^non-numeric columns ignored/),
        expect.stringMatching(/answered by CPU K-means/),
        expect.stringMatching(/^quality gates failed/),
        'fit done',
      ]),
    );
    expect(lines.every((l) => l.correlationId === 'request-42')).toBe(true);
    // A new operation has a new ID of its own.
    const before = lines.length;
    const second = await clusterer.fit(IRIS);
    expect(second.correlationId).toMatch(/^[0-9a-f-]{36}$/);
    expect(lines.slice(before).every((l) => l.correlationId === second.correlationId)).toBe(true);
  });

  it('never carry secrets or raw data, on our logger or a caller-supplied one', () => {
    const { lines, stream } = sink();
    // Values that cannot turn up by chance in a timestamp (5.1 did, in 00:12:25.101Z).
    const line = {
      password: 'hunter2',
      config: { apiKey: 'sk-1', token: 't' },
      data: [5.1234567, 3.5],
      n: 150,
    };
    createLogger({ level: 'info', destination: stream }).info(line, 'ours');
    // The caller's own pino logger has no redaction; the operation logger adds it.
    operationLogger(pino({ base: undefined }, stream), 'op-1').info(line, 'theirs');
    for (const l of lines) {
      expect(l).toMatchObject({
        password: '[redacted]',
        config: { apiKey: '[redacted]', token: '[redacted]' },
        data: '[redacted]',
        n: 150,
      });
    }
    expect(JSON.stringify(lines)).not.toMatch(/hunter2|sk-1|5\.1234567/);
  });

  it('writes human-readable lines when pretty is on, JSON otherwise', () => {
    const written: string[] = [];
    const stream = new Writable({
      write(chunk, _encoding, done) {
        written.push(String(chunk));
        done();
      },
    });
    createLogger({ level: 'info', pretty: 'on', destination: stream }).info({ n: 3 }, 'hello');
    expect(written.join('')).toMatch(/INFO.*\(neurocluster\): hello/s);
    expect(() => JSON.parse(written.join(''))).toThrow();
    written.length = 0;
    createLogger({ level: 'info', destination: stream }).info({ n: 3 }, 'hello');
    expect(JSON.parse(written.join(''))).toMatchObject({ msg: 'hello', n: 3, level: 30 });
  });

  it('go to a pino transport when one is configured (any sink: here pino/file)', async () => {
    const file = join(tempDir(), 'log.jsonl');
    const logger = createLogger({
      level: 'info',
      transport: { target: 'pino/file', options: { destination: file, mkdir: true } },
    });
    logger.info({ n: 1 }, 'to a file');
    await new Promise<void>((resolve, reject) => logger.flush((e) => (e ? reject(e) : resolve())));
    await vi.waitFor(() =>
      expect(existsSync(file) && readFileSync(file, 'utf8')).toMatch(/"msg":"to a file"/),
    );
  });
});

describe('operations', () => {
  const quiet = createLogger({ level: 'silent' });
  const make = (ops: OperationTracker, config = {}) =>
    new NeuromorphicClusterer({
      method: 'esn',
      nClusters: 3,
      backend: 'js',
      logger: quiet,
      operations: ops,
      config,
    });

  it('track every fit and predict: lifecycle, phases, backend, sizes, quality, outcome', async () => {
    const ops = new OperationTracker(3);
    const clusterer = make(ops);
    const result = await clusterer.fit(IRIS, { correlationId: 'fit-1' });
    const fit = ops.get('fit-1')!;
    expect(fit).toMatchObject({
      kind: 'fit',
      state: 'succeeded',
      method: 'esn',
      backend: 'js',
      sizes: { rows: 150, columns: result.features.cols, k: 3 },
      outcome: 'succeeded',
      quality: { silhouette: result.quality.silhouette },
    });
    expect(Object.keys(fit.phases)).toEqual([
      'load',
      'validate',
      'encode',
      'reduce',
      'cluster',
      'score',
      'privacy',
      'total',
    ]);
    expect(Date.parse(fit.endedAt!)).toBeGreaterThanOrEqual(Date.parse(fit.startedAt!));
    await clusterer.predict(IRIS, { correlationId: 'predict-1' });
    const predict = ops.get('predict-1')!;
    expect(predict).toMatchObject({
      kind: 'predict',
      state: 'succeeded',
      backend: 'js',
      sizes: { rows: 150 },
    });
    expect(Object.keys(predict.phases)).toEqual(['load', 'validate', 'encode', 'cluster', 'total']);
  });

  it('mark a fallback or a missed gate degraded, an error failed, and keep the last N', async () => {
    const ops = new OperationTracker(3);
    await make(ops, { faults: { inject: 'oom' } }).fit(IRIS, { correlationId: 'a' });
    await make(ops, { qualityGates: { minSilhouette: 0.99 } }).fit(IRIS, { correlationId: 'b' });
    await make(ops, { encoders: { esn: { readout: 'model-space' } } })
      .fit(IRIS, { correlationId: 'c' })
      .catch(() => undefined);
    expect(ops.get('a')).toMatchObject({ state: 'degraded', outcome: 'out-of-memory' });
    expect(ops.get('b')).toMatchObject({ state: 'degraded', outcome: 'quality-gate' });
    expect(ops.get('c')).toMatchObject({
      state: 'failed',
      error: { code: 'NEUROCLUSTER_ERR_INVALID_ARGUMENT' },
    });
    await make(ops).fit(IRIS, { correlationId: 'd' });
    expect(ops.recent().map((o) => o.id)).toEqual(['d', 'c', 'b']);
    expect(ops.recent(5, 'degraded').map((o) => o.id)).toEqual(['b']);
  });
});
