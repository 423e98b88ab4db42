/**
 * Traces through `@opentelemetry/api`: every operation is a span (`neurocluster.fit`,
 * `neurocluster.predict`, `neurocluster.save`) with a child span per phase
 * (`neurocluster.phase.encode`, ...). Without an OpenTelemetry SDK in the program the API is a
 * no-op; with one, the spans join the caller's trace (the active context is the parent).
 */
import { type Attributes, type Span, SpanStatusCode, trace } from '@opentelemetry/api';
import { VERSION } from '../core/version.js';

export type { Span };

/** Runs `work` in a new active span, ended when it settles; a thrown error marks the span failed. */
export function inSpan<T>(
  name: string,
  attributes: Attributes,
  work: (span: Span) => Promise<T>,
): Promise<T> {
  // Asked for on every call: an SDK registered after this module loaded still gets the spans.
  const tracer = trace.getTracer('neurocluster', VERSION);
  return tracer.startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await work(span);
    } catch (error) {
      const e = error instanceof Error ? error : new Error(String(error));
      span.recordException(e);
      span.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
      throw error;
    } finally {
      span.end();
    }
  });
}
