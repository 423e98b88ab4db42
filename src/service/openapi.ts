/**
 * The service's OpenAPI 3.1 document, made from the zod schemas the routes parse with
 * (schemas.ts), and the docs page made from it. `GET /openapi.json` and `GET /docs` serve them.
 */
import { z } from 'zod';
import { VERSION } from '../core/version.js';
import {
  accepted,
  errorBody,
  jobPage,
  jobView,
  listQuery,
  predictBody,
  predicted,
  submitBody,
} from './schemas.js';

const schema = (s: z.ZodType, io: 'input' | 'output' = 'output') => {
  const { $schema: _, ...rest } = z.toJSONSchema(s, { io, unrepresentable: 'any' }) as Record<
    string,
    unknown
  >;
  return rest;
};

const json = (ref: string) => ({ 'application/json': { schema: { $ref: `#/components/schemas/${ref}` } } });
const error = (description: string) => ({ description, content: json('Error') });
const id = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };
const ERRORS = {
  '401': error('no valid API key (NEUROCLUSTER_ERR_UNAUTHORIZED)'),
  '403': error('a revoked key, or a path outside the data roots'),
  '429': error(
    "over the per-key rate limit (NEUROCLUSTER_ERR_RATE_LIMIT), with Retry-After; or over a tenant's quota (NEUROCLUSTER_ERR_QUOTA), with Retry-After where waiting helps",
  ),
  '503': error('under pressure (NEUROCLUSTER_ERR_RESOURCE_EXHAUSTED), with Retry-After'),
};
const JOB_ERRORS = { ...ERRORS, '404': error('no such job (NEUROCLUSTER_ERR_NOT_FOUND)') };
const RESULT_ERRORS = {
  ...JOB_ERRORS,
  '409': error('the job has not succeeded (NEUROCLUSTER_ERR_CONFLICT)'),
};
const probe = (summary: string) => ({
  get: {
    summary,
    security: [],
    responses: { '200': { description: 'pass or warn' }, '503': { description: 'fail' } },
  },
});

const page = (summary: string) => ({
  get: { summary, security: [], responses: { '200': { description: summary } } },
});

export function openApiDocument(): Record<string, unknown> {
  const query = schema(listQuery, 'input') as { properties: Record<string, unknown> };
  return {
    openapi: '3.1.0',
    info: {
      title: 'neurocluster service',
      version: VERSION,
      description: 'Clustering jobs on the neuromorphic engine. See docs/service.md.',
    },
    security: [{ apiKey: [] }],
    components: {
      securitySchemes: {
        apiKey: { type: 'http', scheme: 'bearer', description: 'a key from `neurocluster api-keys create`' },
      },
      schemas: {
        Submit: schema(submitBody, 'input'),
        Predict: schema(predictBody, 'input'),
        Accepted: schema(accepted),
        Job: schema(jobView),
        JobPage: schema(jobPage),
        Predicted: schema(predicted),
        Error: schema(errorBody),
      },
    },
    paths: {
      '/v1/jobs': {
        post: {
          summary: 'submit a job: rows or a path as JSON, or a file as multipart/form-data',
          requestBody: {
            required: true,
            content: {
              ...json('Submit'),
              'multipart/form-data': {
                schema: {
                  type: 'object',
                  required: ['file'],
                  properties: {
                    file: { type: 'string', contentMediaType: 'application/octet-stream' },
                    options: { type: 'string', description: 'the options document, as JSON' },
                  },
                },
              },
            },
          },
          responses: {
            '202': { description: 'accepted, queued', content: json('Accepted') },
            '413': error('over service.maxBodyBytes (NEUROCLUSTER_ERR_TOO_LARGE)'),
            '422': error('a body or options that do not match the schema (NEUROCLUSTER_ERR_CONFIG)'),
            ...ERRORS,
          },
        },
        get: {
          summary: 'a page of jobs, newest first',
          parameters: Object.entries(query.properties).map(([name, s]) => ({ name, in: 'query', schema: s })),
          responses: { '200': { description: 'the page', content: json('JobPage') }, ...ERRORS },
        },
      },
      '/v1/jobs/{id}': {
        get: {
          summary: 'a job: state, progress, result without labels, error',
          parameters: [id],
          responses: { '200': { description: 'the job', content: json('Job') }, ...JOB_ERRORS },
        },
        delete: {
          summary: 'cancel a queued or running job (202), or delete a finished one and its files (204)',
          parameters: [id],
          responses: {
            '202': { description: 'cancelled', content: json('Job') },
            '204': { description: 'deleted' },
            ...JOB_ERRORS,
          },
        },
      },
      '/v1/jobs/{id}/result': {
        get: {
          summary: 'the whole result, labels included',
          parameters: [id],
          responses: { '200': { description: 'the result JSON' }, ...RESULT_ERRORS },
        },
      },
      '/v1/jobs/{id}/labels': {
        get: {
          summary: 'a label per row, as CSV',
          parameters: [id],
          responses: {
            '200': {
              description: 'label, or id,label',
              content: { 'text/csv': { schema: { type: 'string' } } },
            },
            ...RESULT_ERRORS,
          },
        },
      },
      '/v1/jobs/{id}/plot.svg': {
        get: {
          summary: 'the cluster plot',
          parameters: [id],
          responses: {
            '200': { description: 'SVG', content: { 'image/svg+xml': { schema: { type: 'string' } } } },
            ...RESULT_ERRORS,
          },
        },
      },
      '/v1/jobs/{id}/predict': {
        post: {
          summary: "label new rows with the job's model",
          parameters: [id],
          requestBody: { required: true, content: json('Predict') },
          responses: { '200': { description: 'the labels', content: json('Predicted') }, ...RESULT_ERRORS },
        },
      },
      '/v1/jobs/{id}/events': {
        get: {
          summary: 'Server-Sent Events (event: job) until the job is final',
          parameters: [id],
          responses: {
            '200': {
              description: 'the stream',
              content: { 'text/event-stream': { schema: { type: 'string' } } },
            },
            ...JOB_ERRORS,
          },
        },
      },
      '/v1/events': {
        get: {
          summary: "Server-Sent Events (event: job) of every job's changes, for as long as the client stays",
          responses: {
            '200': {
              description: 'the stream',
              content: { 'text/event-stream': { schema: { type: 'string' } } },
            },
            ...ERRORS,
          },
        },
      },
      '/v1/status': {
        get: {
          summary:
            'jobs by state, the fallback rate of the last 100 succeeded jobs, the breakers, the privacy budgets',
          responses: { '200': { description: 'the status' }, ...ERRORS },
        },
      },
      '/dashboard': page('the live dashboard'),
      '/dashboard/app.js': page("the dashboard's script"),
      '/dashboard/app.css': page("the dashboard's style"),
      '/livez': probe('liveness'),
      '/readyz': probe('readiness (503 from SIGTERM on)'),
      '/healthz': probe('liveness and readiness with resources and breakers'),
      '/metrics': {
        get: {
          summary: 'Prometheus metrics',
          security: [],
          responses: { '200': { description: 'text format' } },
        },
      },
      '/openapi.json': {
        get: { summary: 'this document', security: [], responses: { '200': { description: 'OpenAPI 3.1' } } },
      },
      '/docs': {
        get: {
          summary: 'this document as a page',
          security: [],
          responses: { '200': { description: 'HTML' } },
        },
      },
    },
  };
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The document as a page of its routes, with no script and nothing from outside the service. */
export function docsPage(doc: Record<string, unknown>): string {
  const paths = doc.paths as Record<
    string,
    Record<string, { summary: string; responses: Record<string, unknown> }>
  >;
  const rows = Object.entries(paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(
      ([method, op]) =>
        `<tr><td><code>${method.toUpperCase()}</code></td><td><code>${escapeHtml(path)}</code></td><td>${escapeHtml(op.summary)}</td><td>${Object.keys(op.responses).join(' ')}</td></tr>`,
    ),
  );
  const info = doc.info as { title: string; version: string };
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(info.title)} ${escapeHtml(info.version)}</title></head>
<body><h1>${escapeHtml(info.title)} ${escapeHtml(info.version)}</h1>
<p>Every <code>/v1</code> route needs <code>Authorization: Bearer &lt;key&gt;</code>. The machine-readable document: <a href="/openapi.json">/openapi.json</a>.</p>
<table><thead><tr><th>method</th><th>path</th><th>what</th><th>statuses</th></tr></thead><tbody>
${rows.join('\n')}
</tbody></table></body></html>
`;
}
