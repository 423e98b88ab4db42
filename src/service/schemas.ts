/**
 * The shapes of the service's requests and answers, in zod: the routes parse requests with them,
 * and the OpenAPI document (openapi.ts) is generated from them, so the two cannot drift apart.
 */
import { z } from 'zod';
import { JOB_STATES } from './jobs.js';

/** What a `file` part may be: the formats the CLI reads, by their extensions. */
export const UPLOAD_EXTENSIONS = new Set([
  '.csv',
  '.tsv',
  '.txt',
  '.json',
  '.jsonl',
  '.ndjson',
  '.npy',
  '.parquet',
  '.pq',
]);

const cell = z.union([z.number(), z.string(), z.boolean(), z.null()]);
const options = z
  .record(z.string(), z.unknown())
  .default({})
  .describe(
    'a configuration document of the work: engine, data, encoders, kmeans, stream, output, qualityGates, privacy (not budget), timeout, fallback',
  );

export const rowsData = z
  .union([
    z.array(z.array(cell)).min(1).describe('rows of cells'),
    z
      .strictObject({ columns: z.array(z.string()).min(1), rows: z.array(z.array(cell)).min(1) })
      .describe('named columns and their rows'),
  ])
  .describe('the rows to cluster');

export const submitBody = z.union([
  z.strictObject({ data: rowsData, options }),
  z.strictObject({
    source: z.strictObject({
      path: z.string().min(1).describe('an absolute path inside security.dataRoots'),
    }),
    options,
  }),
]);

export const predictBody = z.strictObject({ data: rowsData });

export const listQuery = z.strictObject({
  state: z.enum(JOB_STATES).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().regex(/^\d+$/).optional().describe('the `next` of the page before'),
});

const progress = z.strictObject({ phase: z.string(), done: z.number(), total: z.number() });
const links = z.record(z.string(), z.string());

export const jobView = z.strictObject({
  id: z.string(),
  state: z.enum(JOB_STATES),
  progress: progress.optional(),
  createdAt: z.string(),
  startedAt: z.string().optional(),
  endedAt: z.string().optional(),
  result: z.record(z.string(), z.unknown()).optional().describe('the result without its labels'),
  error: z.strictObject({ code: z.string(), message: z.string() }).optional(),
  links,
});

export const accepted = z.strictObject({ id: z.string(), state: z.literal('queued'), links });
export const jobPage = z.strictObject({ jobs: z.array(jobView), next: z.string().optional() });
export const predicted = z.strictObject({ rows: z.number(), labels: z.array(z.number()) });
export const errorBody = z.strictObject({
  error: z.strictObject({ code: z.string(), message: z.string(), correlationId: z.string() }),
});
