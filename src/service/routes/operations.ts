/**
 * The service's own routes: the probes, the metrics, the OpenAPI document and its page, the
 * dashboard and the status it shows beside the jobs.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { healthz, liveness, readiness } from '../../observability/health.js';
import { selectionContext } from '../../runtime/runtime.js';
import { caller, type ServiceContext } from '../context.js';
import { DASHBOARD_CSS, DASHBOARD_HTML, DASHBOARD_JS } from '../dashboard.js';
import { docsPage, openApiDocument } from '../openapi.js';
import { mergedMetrics } from '../runner.js';
import { tenantBudgets } from '../tenants.js';

export function operationRoutes(app: FastifyInstance, ctx: ServiceContext): void {
  const { config, runtime, jobs, runner } = ctx;
  const metrics = runtime.metrics;
  const home = runtime.home;

  /**
   * What the dashboard shows beside the jobs: the tenant's jobs by state and fallback rate, the
   * breakers, the privacy budgets and who runs the jobs.
   */
  app.get('/v1/status', async (request) => {
    const tenant = caller(request).tenant;
    const recent = jobs.list({ state: 'succeeded', tenant, limit: 100 }).jobs;
    const fallbacks = recent.filter((j) => j.summary?.fallbackUsed === true).length;
    return {
      jobs: jobs.counts(tenant),
      fallback: { jobs: recent.length, fallbacks, rate: recent.length === 0 ? 0 : fallbacks / recent.length },
      breakers: runtime.breakers(config).list(),
      // The tenant's own budgets only: another's datasets are not its business.
      budgets: tenantBudgets(runtime.privacyAccountant(config).list(), tenant),
      workers: await runner.workers(),
    };
  });

  app.get('/dashboard', async (_request, reply) =>
    reply.type('text/html; charset=utf-8').send(DASHBOARD_HTML),
  );
  app.get('/dashboard/app.js', async (_request, reply) =>
    reply.type('text/javascript; charset=utf-8').send(DASHBOARD_JS),
  );
  app.get('/dashboard/app.css', async (_request, reply) =>
    reply.type('text/css; charset=utf-8').send(DASHBOARD_CSS),
  );

  const readinessDeps = () => ({
    registry: runtime.registry,
    backend: config.engine.backend,
    selection: selectionContext(config.engine, Number.POSITIVE_INFINITY),
    breakers: runtime.breakers(config),
    monitor: runtime.resourceMonitor(config),
    home,
  });
  const probe = async (reply: FastifyReply, report: { status: string }) =>
    reply.status(report.status === 'fail' ? 503 : 200).send(report);

  app.get('/livez', async (_request, reply) => probe(reply, await liveness()));
  app.get('/readyz', async (_request, reply) => {
    if (ctx.draining())
      return reply
        .status(503)
        .send({ status: 'fail', checks: [{ name: 'service', status: 'fail', message: 'shutting down' }] });
    return probe(reply, await readiness(readinessDeps()));
  });
  app.get('/healthz', async (_request, reply) => probe(reply, await healthz(readinessDeps())));
  const document = openApiDocument();
  const page = docsPage(document);
  app.get('/openapi.json', async () => document);
  app.get('/docs', async (_request, reply) => reply.type('text/html; charset=utf-8').send(page));

  app.get('/metrics', async (_request, reply) => {
    runtime.breakers(config);
    runtime.resourceMonitor(config);
    // The jobs' engine metrics (operations, kernels, fallbacks) are counted in the worker threads;
    // with a queue, the runner sets the queue's gauges: asked first, so this scrape has them.
    const workers = await runner.workerMetrics();
    const text = await mergedMetrics(await metrics.registry.getMetricsAsJSON(), workers);
    return reply.type('text/plain; version=0.0.4; charset=utf-8').send(text);
  });
}
