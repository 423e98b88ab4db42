/**
 * The one source of truth for every option: defaults, CLI flags (src/cli/options.ts derives theirs
 * from the descriptions, choices and defaults here) and the configuration file all come from it.
 *
 * Sections whose features arrive in later issues are accepted as objects now and get their full
 * schema with those features.
 */
import { z } from 'zod';
import { BACKEND_NAMES } from '../backends/backend.js';

/** Clustering methods of this version; the neuromorphic encoders add theirs. */
export const METHODS = ['kmeans'] as const;
export type Method = (typeof METHODS)[number];

export const NAN_POLICIES = ['error', 'drop-rows', 'impute-mean'] as const;
export type NanPolicy = (typeof NAN_POLICIES)[number];

const later = (what: string) =>
  z.looseObject({}).default({}).describe(`${what}; its keys are defined by the issue that builds it`);

export const engineSchema = z.strictObject({
  method: z.enum(METHODS).default('kmeans').describe('clustering method'),
  backend: z
    .enum(['auto', ...BACKEND_NAMES])
    .default('auto')
    .describe('compute backend: auto takes the best one that starts'),
  seed: z.int().min(0).max(Number.MAX_SAFE_INTEGER).default(0).describe('seed of every random choice'),
  silhouetteExactMaxSamples: z
    .int()
    .min(2)
    .default(10_000)
    .describe('silhouette is exact up to this many rows and computed on a seeded sample of this size above'),
});

export const dataSchema = z.strictObject({
  labelColumn: z.string().min(1).optional().describe('ground-truth column, kept out of the features'),
  idColumn: z.string().min(1).optional().describe('identifier column, carried through to the output'),
  seriesLength: z.int().min(1).optional().describe('series length T of a wide time-series CSV'),
  nanPolicy: z.enum(NAN_POLICIES).default('error').describe('what to do with NaN, Inf and empty cells'),
  standardize: z
    .boolean()
    .default(true)
    .describe('z-score tabular columns (population std, as StandardScaler); series are z-normalized each'),
});

export const kmeansSchema = z.strictObject({
  nClusters: z.int().min(1).optional().describe('number of clusters k'),
  nInit: z.int().min(1).default(10).describe('k-means++ restarts; the lowest inertia is kept'),
  maxIter: z.int().min(1).default(300).describe('Lloyd iterations per restart at most'),
  tol: z
    .number()
    .min(0)
    .default(1e-4)
    .describe('convergence: centroid shift below tol x mean per-feature variance'),
  algorithm: z
    .enum(['auto', 'lloyd', 'minibatch'])
    .default('auto')
    .describe('auto runs Lloyd, and mini-batch above miniBatchThreshold rows'),
  miniBatchThreshold: z.int().min(1).default(100_000).describe('rows above which auto runs mini-batch'),
  batchSize: z.int().min(1).default(1024).describe('mini-batch size'),
  maxNoImprovement: z
    .int()
    .min(1)
    .default(10)
    .describe('mini-batch stops after this many batches without a better smoothed inertia'),
});

export const loggingSchema = z.looseObject({
  level: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    .default('warn')
    .describe('log level'),
});

/** The configuration document (`--config file.json|yaml`). */
export const configSchema = z.strictObject({
  engine: engineSchema.default(engineSchema.parse({})),
  data: dataSchema.default(dataSchema.parse({})),
  encoders: z
    .looseObject({
      esn: z.looseObject({}).optional(),
      snn: z.looseObject({}).optional(),
      lsm: z.looseObject({}).optional(),
      hybrid: z.looseObject({}).optional(),
    })
    .default({})
    .describe('neuromorphic encoder parameters (esn, snn, lsm, hybrid)'),
  kmeans: kmeansSchema.default(kmeansSchema.parse({})),
  circuitBreaker: later('per-backend circuit breaker'),
  retry: later('retries with backoff'),
  timeout: z
    .union([z.string(), z.number(), z.looseObject({})])
    .optional()
    .describe('deadline of the neuromorphic path; defined by the resilience issue'),
  fallback: later('fallback to CPU K-means'),
  monitoring: later('resource monitoring'),
  qualityGates: later('quality gates'),
  privacy: later('differential privacy and k-anonymity'),
  security: later('secure loading, encryption, audit'),
  logging: loggingSchema.default(loggingSchema.parse({})),
  metrics: later('Prometheus metrics'),
});

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
export type EngineConfig = Config['engine'];
export type DataConfig = Config['data'];
export type KMeansConfig = Config['kmeans'];

/** A deep-partial document, as a file or a caller supplies it. */
export type ConfigOverrides = { [S in keyof ConfigInput]?: Partial<NonNullable<ConfigInput[S]>> };
