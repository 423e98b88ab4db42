/**
 * OpenTelemetry: with an SDK registered (here the in-memory exporter of sdk-trace-base), a fit is a
 * span with one child per phase, inside the caller's own span; without one, nothing is recorded.
 */

import { join } from 'node:path';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NeuromorphicClusterer } from '../../src/clusterer.js';
import { createLogger } from '../../src/observability/logger.js';
import { ROOT } from '../helpers.js';

const IRIS_PATH = join(ROOT, 'examples/iris.csv');
const exporter = new InMemorySpanExporter();
const manager = new AsyncLocalStorageContextManager();

beforeAll(() => {
  manager.enable();
  context.setGlobalContextManager(manager);
  trace.setGlobalTracerProvider(
    new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }),
  );
});

afterAll(() => {
  trace.disable();
  context.disable();
});

describe('traces', () => {
  it('a fit is a span inside the caller’s, with a child span per phase', async () => {
    const clusterer = new NeuromorphicClusterer({
      method: 'hybrid',
      nClusters: 3,
      seed: 1,
      backend: 'js',
      logger: createLogger({ level: 'silent' }),
    });
    const tracer = trace.getTracer('caller');
    await tracer.startActiveSpan('request', async (span) => {
      await clusterer.fit(IRIS_PATH, { correlationId: 'trace-1' });
      span.end();
    });
    const spans = exporter.getFinishedSpans();
    const request = spans.find((s) => s.name === 'request')!;
    const fit = spans.find((s) => s.name === 'neurocluster.fit')!;
    expect(fit.parentSpanContext?.spanId).toBe(request.spanContext().spanId);
    expect(fit.spanContext().traceId).toBe(request.spanContext().traceId);
    expect(fit.attributes).toMatchObject({
      'neurocluster.correlation_id': 'trace-1',
      'neurocluster.method': 'hybrid',
      'neurocluster.backend': 'js',
      'neurocluster.outcome': 'succeeded',
      'neurocluster.rows': 150,
    });
    const phases = spans
      .filter((s) => s.parentSpanContext?.spanId === fit.spanContext().spanId)
      .map((s) => s.name);
    expect(phases).toEqual([
      'neurocluster.phase.load',
      'neurocluster.phase.validate',
      'neurocluster.phase.encode',
      'neurocluster.phase.cluster',
      'neurocluster.phase.score',
    ]);
    // reduce (the hybrid method's PCA) runs inside encode.
    const encode = spans.find((s) => s.name === 'neurocluster.phase.encode')!;
    const reduce = spans.find((s) => s.name === 'neurocluster.phase.reduce')!;
    expect(reduce.parentSpanContext?.spanId).toBe(encode.spanContext().spanId);
  });

  it('a failed fit ends its span with an error status and the exception', async () => {
    exporter.reset();
    const clusterer = new NeuromorphicClusterer({ nClusters: 3, logger: createLogger({ level: 'silent' }) });
    await clusterer.fit('/nonexistent/file.csv').catch(() => undefined);
    const fit = exporter.getFinishedSpans().find((s) => s.name === 'neurocluster.fit')!;
    expect(fit.status.code).toBe(2); // SpanStatusCode.ERROR
    expect(fit.events.map((e) => e.name)).toContain('exception');
    expect(fit.attributes['neurocluster.outcome']).toMatch(/^NEUROCLUSTER_ERR_/);
  });
});
