/**
 * The one source of truth for every option: defaults, CLI flags (src/cli/options.ts derives theirs
 * from the descriptions, choices and defaults here) and the configuration file all come from it.
 */
import { z } from 'zod';
import { BACKEND_NAMES } from '../core/matrix.js';
import { durationSchema as duration } from './duration.js';
import { parseFault } from './faults.js';
import { distributedSchema, metricsSchema, serviceSchema } from './service-schema.js';

export { durationMs } from './duration.js';
export { distributedSchema, metricsSchema, serviceSchema } from './service-schema.js';

/** The neuromorphic encoders; `hybrid` runs the three side by side. */
export const ENCODER_METHODS = ['esn', 'snn', 'lsm', 'hybrid'] as const;
export type EncoderMethod = (typeof ENCODER_METHODS)[number];

/** Clustering methods: plain K-means on the cleaned input, or K-means on encoded features. */
export const METHODS = ['kmeans', ...ENCODER_METHODS] as const;
export type Method = (typeof METHODS)[number];

export const NAN_POLICIES = ['error', 'drop-rows', 'impute-mean'] as const;
export type NanPolicy = (typeof NAN_POLICIES)[number];

/** Per-backend circuit breakers (cockatiel): when a backend keeps failing, requests skip it for a while. */
export const circuitBreakerSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('breakers on; off sends every request to its backend'),
  failureThreshold: z.int().min(1).default(5).describe('consecutive failures that open a breaker'),
  recoveryTimeout: duration('60s').describe(
    'open this long before a half-open probe; saved states expire after it',
  ),
  strategy: z
    .enum(['consecutive', 'sampling'])
    .default('consecutive')
    .describe('consecutive failures, or a failure ratio over a sampling window'),
  samplingWindow: duration('60s').describe('sampling strategy: the window'),
  failureRatio: z
    .number()
    .gt(0)
    .max(1)
    .default(0.5)
    .describe('sampling strategy: the failure ratio that opens'),
  minimumRequests: z
    .int()
    .min(1)
    .default(5)
    .describe('sampling strategy: requests in the window before it may open'),
});

/** Retries of transient failures (kernel errors, lost devices) on the same backend. */
export const retrySchema = z.strictObject({
  maxRetries: z.int().min(0).max(10).default(2).describe('tries after the first'),
  baseDelay: duration('1s').describe('first backoff; each next one grows exponentially, with jitter'),
  maxDelay: duration('30s').describe('longest backoff'),
});

/** What happens when the neuromorphic path fails. */
export const fallbackSchema = z.strictObject({
  enabled: z
    .boolean()
    .default(true)
    .describe('answer with CPU K-means on the cleaned input (false: fail, exit 1)'),
  degradeOrder: z
    .array(z.enum(BACKEND_NAMES))
    .min(1)
    .default(['webgpu', 'wasm', 'js'])
    .describe('backends tried in turn under auto before the fallback'),
});

/** Why a fault spec does not parse, or undefined when it does. */
function faultSpecProblem(spec: string): string | undefined {
  try {
    parseFault(spec);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/** Fault injection for game days (also NEUROCLUSTER_FAULT, which this key overrides). */
export const faultsSchema = z.strictObject({
  inject: z
    .string()
    .refine((spec) => faultSpecProblem(spec) === undefined, {
      error: (issue) => faultSpecProblem(String(issue.input)) ?? 'not a fault',
    })
    .optional()
    .describe(
      '<kind>[:<backend>][@<probability>]: kernel-throw, kernel-hang, device-lost, oom, nan, worker-crash',
    ),
});

/** Minimums a result is checked against; `warn` reports, `fail` fails the request. */
export const qualityGatesSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('check results against the gates'),
  mode: z
    .enum(['warn', 'fail'])
    .default('warn')
    .describe('warn: report failed gates in the result and the log; fail: the request fails (exit 1)'),
  minSilhouette: z.number().min(-1).max(1).default(0.3).describe('lowest silhouette that passes'),
  minCalinskiHarabasz: z.number().min(0).default(50).describe('lowest Calinski-Harabasz index that passes'),
  minClusterSize: z.int().min(0).default(5).describe('fewest members of the smallest cluster that pass'),
});

/** Rolling baselines of phase durations per workload shape, and when a run counts as slow. */
export const performanceSchema = z.strictObject({
  baselines: z
    .boolean()
    .default(true)
    .describe('keep baselines in $NEUROCLUSTER_HOME/state and flag slow runs'),
  anomalyFactor: z
    .number()
    .gt(1)
    .default(2)
    .describe('a phase slower than this times its baseline is an anomaly'),
  window: z.int().min(1).max(1000).default(20).describe('runs kept per workload shape'),
  minSamples: z.int().min(1).default(5).describe('runs a baseline needs before it judges'),
  minPhaseSeconds: z.number().min(0).default(0.05).describe('shorter phases are not judged'),
});

/** The error tracker's window and alert threshold. */
export const errorTrackingSchema = z.strictObject({
  window: duration('60s').describe('sliding window of the error counts'),
  alertThreshold: z.int().min(1).default(10).describe('errors within the window that raise an alert'),
});

/** The WebGPU device; each key also has an environment variable, which the key overrides. */
export const webgpuSchema = z.strictObject({
  adapter: z
    .string()
    .min(1)
    .optional()
    .describe(
      'part of the GPU adapter name to use (NEUROCLUSTER_WEBGPU_ADAPTER); default: the high-performance one',
    ),
  allowSoftware: z
    .boolean()
    .optional()
    .describe('let auto take a software adapter such as SwiftShader (NEUROCLUSTER_WEBGPU_ALLOW_SOFTWARE=1)'),
  memoryBudgetMB: z
    .number()
    .positive()
    .optional()
    .describe(
      'device memory the backend may hold; larger jobs run in chunks, and an encoder output stays on the device into K-means when it fits a quarter of it (NEUROCLUSTER_WEBGPU_MEMORY_BUDGET_MB, default 1024)',
    ),
});

/** The WASM backend's worker pool. */
export const wasmSchema = z.strictObject({
  threads: z
    .int()
    .min(1)
    .max(256)
    .optional()
    .describe('worker threads of the WASM backend (NEUROCLUSTER_WASM_THREADS); default: one per core'),
});

export const engineSchema = z.strictObject({
  method: z
    .enum(['auto', ...METHODS])
    .default('auto')
    .describe(
      'clustering method: kmeans, K-means on encoded features, or auto (hybrid for time series, kmeans for rows)',
    ),
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
  smallProblemSize: z
    .int()
    .min(0)
    .default(20_000)
    .describe(
      'under auto, inputs of fewer values (rows x columns) run on the plain js backend; 0 turns this off',
    ),
  webgpu: webgpuSchema.default({}),
  wasm: wasmSchema.default({}),
});

const positive = () => z.number().positive();
const fraction = () => z.number().gt(0).max(1);

/** Spiking-layer settings shared by `snn` and `lsm`; times in milliseconds. */
const spikingFields = {
  threshold: positive().default(1).describe('membrane potential at which a neuron fires'),
  reset: z.number().default(0).describe('membrane potential after a spike'),
  refractory: z.number().min(0).default(2).describe('refractory period, ms'),
  tauSynaptic: positive().default(5).describe('time constant of the filtered spike trace readout, ms'),
  dt: positive().default(1).describe('time step, ms'),
  duration: positive()
    .default(100)
    .describe('simulated time per static sample, ms (a series takes one step per value)'),
  maxRate: positive().default(100).describe('rate coding: firing rate of the strongest input, Hz'),
  timePoints: z
    .int()
    .min(1)
    .default(4)
    .describe('readout windows over a sequence, to keep its time structure'),
  includeInput: z.boolean().default(true).describe('put the input beside the spiking features'),
  washout: z.int().min(0).default(5).describe('readout "model-space": first steps left out'),
  ridge: positive().default(1).describe('readout "model-space": ridge penalty of the per-series readout'),
};

export const esnSchema = z.strictObject({
  units: z.int().min(1).max(4096).default(100).describe('reservoir size'),
  spectralRadius: positive().default(0.95).describe('spectral radius the recurrent matrix is scaled to'),
  leak: fraction().default(0.3).describe('leak rate a of x <- (1 - a) x + a tanh(...)'),
  inputScaling: positive().default(1).describe('input weights uniform in [-s, s]'),
  biasScaling: z.number().min(0).default(0.2).describe('bias uniform in [-s, s]'),
  connectivity: fraction().default(0.1).describe('fraction of non-zero recurrent weights'),
  steps: z.int().min(1).default(30).describe('steps a static input is held for'),
  washout: z.int().min(0).default(5).describe('first steps left out of mean and model-space readouts'),
  readout: z
    .enum(['auto', 'last', 'mean', 'last+mean', 'times', 'model-space'])
    .default('auto')
    .describe('states that become features; auto: last+mean for static input, times for a sequence'),
  timePoints: z.int().min(1).default(4).describe('readout "times": states at this many evenly spaced steps'),
  includeInput: z.boolean().default(true).describe('readout [u; x]: the input beside the states'),
  ridge: positive().default(1).describe('readout "model-space": ridge penalty of the per-series readout'),
  bidirectional: z
    .boolean()
    .default(true)
    .describe('a series is also read backwards, its features beside the forward ones (Bianchi et al. 2020)'),
  stateComponents: z
    .int()
    .min(0)
    .default(0)
    .describe(
      'readout "model-space": the reservoir states reduced by PCA to this many components first (0: not reduced)',
    ),
  modelSpaceTarget: z
    .enum(['input', 'state'])
    .default('input')
    .describe(
      'readout "model-space": what each series\' readout predicts, its next input or the next (reduced) reservoir state',
    ),
});

export const snnSchema = z.strictObject({
  neurons: z.int().min(1).max(4096).default(50).describe('LIF neurons'),
  tauMembrane: positive().default(20).describe('membrane time constant, ms'),
  encoding: z
    .enum(['auto', 'rate', 'current'])
    .default('auto')
    .describe(
      'Bernoulli rate coding or direct current; auto: rates for a static input, current for a sequence',
    ),
  inputScaling: positive().default(1).describe('input weights normal with this standard deviation'),
  readout: z
    .enum(['auto', 'rates', 'counts', 'first-spike', 'trace', 'model-space'])
    .default('auto')
    .describe(
      'what becomes features; auto: rates for a static input, the model space of the traces for a sequence',
    ),
  ...spikingFields,
});

export const lsmSchema = z.strictObject({
  neurons: z.int().min(8).max(4096).default(64).describe('liquid neurons, on a 3-D grid (64: 4 x 4 x 4)'),
  connectivity: fraction().default(0.3).describe('connection probability between excitatory neighbours'),
  lambda: positive().default(2).describe('connection length scale on the grid'),
  excitatory: fraction().default(0.8).describe('fraction of excitatory neurons'),
  weightScale: positive().default(0.1).describe('scale of the recurrent synaptic weights'),
  tauMembrane: positive().default(30).describe('membrane time constant, ms'),
  encoding: z
    .enum(['rate', 'current'])
    .default('current')
    .describe('Bernoulli rate coding or direct current'),
  inputScaling: positive().default(1).describe('input weights normal with this standard deviation'),
  readout: z
    .enum(['auto', 'counts', 'trace', 'model-space'])
    .default('auto')
    .describe(
      'what becomes features; auto: counts for a static input, the model space of the traces for a sequence',
    ),
  ...spikingFields,
});

export const hybridSchema = z.strictObject({
  components: z.int().min(1).default(10).describe('PCA components of the concatenated blocks'),
  includeInput: z.boolean().default(true).describe('the input as a fourth block'),
  inputWeight: z
    .union([z.literal('auto'), positive()])
    .default('auto')
    .describe(
      'share of the input block: 1 gives it the variance of one encoder block, sqrt(3) that of all three; auto: 0.5 under a co-association consensus on a series, else 1',
    ),
});

export const dataSchema = z.strictObject({
  labelColumn: z.string().min(1).optional().describe('ground-truth column, kept out of the features'),
  idColumn: z.string().min(1).optional().describe('identifier column, carried through to the output'),
  seriesIdColumn: z
    .string()
    .min(1)
    .optional()
    .describe(
      "long format: the column naming each row's series (one row per step); each series is one sample",
    ),
  timeColumn: z
    .string()
    .min(1)
    .optional()
    .describe(
      'long format: the column ordering the steps of a series (numbers or ISO dates); file order when absent',
    ),
  seriesLength: z.int().min(1).optional().describe('series length T of a wide time-series CSV'),
  nanPolicy: z.enum(NAN_POLICIES).default('error').describe('what to do with NaN, Inf and empty cells'),
  delimiter: z
    .enum([',', ';', '\t', 'tab', '|'])
    .optional()
    .describe(
      'the delimiter of a CSV file (tab: a tab); sniffed from its first lines when absent, a tab for .tsv',
    ),
  decimal: z
    .enum(['auto', '.', ','])
    .default('auto')
    .describe('the decimal mark of numbers in text files; auto: a comma in a ;-delimited file, else a point'),
  header: z
    .boolean()
    .default(true)
    .describe(
      'whether the first row of a CSV file is its header (--no-header: numbered columns, data from the first row)',
    ),
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

/** How a fit of a file runs over chunks of rows instead of holding the file (docs/configuration.md). */
export const streamSchema = z.strictObject({
  mode: z
    .enum(['auto', 'on', 'off'])
    .default('auto')
    .describe(
      'auto streams a CSV, JSON Lines, Parquet or NPY file of more rows than sampleRows (for text, as its first lines say); on streams every such file; off reads files whole',
    ),
  sampleRows: z
    .int()
    .min(1_000)
    .default(50_000)
    .describe(
      'rows of the seeded sample the encoders, the K-means start and the silhouette are fitted on; a file of at most this many rows is fitted exactly as in memory',
    ),
  chunkRows: z
    .int()
    .min(1)
    .default(65_536)
    .describe('rows of a chunk at most; fewer when the memory budget leaves less room'),
});

/** What a fit returns and writes. */
export const outputSchema = z.strictObject({
  inlineLabelsMax: z
    .int()
    .min(0)
    .default(1_000_000)
    .describe(
      'rows past which a streamed fit carries no labels array: they are in the labels file (--labels-out), which is then required',
    ),
});

export const loggingSchema = z.strictObject({
  level: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    .default('warn')
    .describe('log level'),
  pretty: z
    .enum(['auto', 'on', 'off'])
    .default('auto')
    .describe('human-readable lines instead of JSON; auto: when stderr is a terminal'),
  transport: z
    .strictObject({
      target: z.string().min(1).describe('a pino transport: a package name or a file path'),
      options: z.record(z.string(), z.unknown()).optional().describe("the transport's options"),
    })
    .optional()
    .describe('send log lines to a pino transport (a sink of your choice) instead of stderr'),
});

/** Resource thresholds (fractions) and the memory budget jobs are admitted against. */
export const monitoringSchema = z.strictObject({
  memoryBudgetMB: z
    .number()
    .positive()
    .optional()
    .describe(
      "memory the process may hold; a job that would pass memoryCritical of it is refused (default: the machine's)",
    ),
  memoryWarning: fraction().default(0.8).describe('memory (RSS over the budget) that warns'),
  memoryCritical: fraction().default(0.95).describe('memory that refuses a job'),
  cpuWarning: fraction().default(0.7).describe('CPU use (share of all cores) that warns'),
  cpuCritical: fraction().default(0.9).describe('CPU use that is critical'),
  diskWarning: fraction().default(0.9).describe('disk of NEUROCLUSTER_HOME in use that warns'),
  diskCritical: fraction().default(0.98).describe('disk in use that is critical'),
});

/** One public range of a column: `<min>:<max>`, or [min, max] (min < max is checked where used). */
const RANGE_TEXT = String.raw`\s*[-+]?[0-9.eE+-]+\s*:\s*[-+]?[0-9.eE+-]+\s*`;
const BOUNDS_TEXT = new RegExp(`^(?:[^=,]+=)?${RANGE_TEXT}(?:,(?:[^=,]+=)?${RANGE_TEXT})*$`);
const boundsRange = z.union([
  z.string().regex(new RegExp(`^${RANGE_TEXT}$`), 'expected <min>:<max>, e.g. -10:10'),
  z.tuple([z.number(), z.number()]),
]);

/** Differential privacy (DP K-means, per-dataset budgets) and k-anonymity of released results. */
export const privacySchema = z.strictObject({
  epsilon: z
    .number()
    .gt(0)
    .max(1000)
    .optional()
    .describe('cluster with DP K-means at this epsilon, charged to the dataset budget (method kmeans)'),
  delta: z
    .number()
    .gt(0)
    .lt(1)
    .optional()
    .describe('with epsilon: Gaussian noise under zCDP, converted at this delta (Laplace when absent)'),
  bounds: z
    .union([
      z
        .string()
        .regex(
          BOUNDS_TEXT,
          'expected <min>:<max> for every column, or one range per column: <min>:<max>,<min>:<max>,... by position, <column>=<min>:<max>,... by name',
        ),
      z.array(boundsRange).min(1),
      z.record(z.string().min(1), boundsRange),
    ])
    .optional()
    .describe(
      'public bounds: <min>:<max> for every column, or one range per column by position (<min>:<max>,<min>:<max>,...; an array) or by name (<column>=<min>:<max>,...; a map); estimated under DP when absent',
    ),
  dataset: z
    .string()
    .min(1)
    .max(200)
    .optional()
    .describe('the dataset the budget belongs to; the content hash of the parsed matrix by default'),
  namespace: z
    .string()
    .regex(/^[A-Za-z0-9._:-]{1,80}$/, 'letters, digits, . _ : - (at most 80)')
    .optional()
    .describe(
      "budgets are kept as <namespace>/<dataset>: the service sets tenant:<name>, so that each tenant's budgets are its own",
    ),
  iterations: z
    .int()
    .min(1)
    .max(100)
    .default(10)
    .describe('Lloyd iterations of DP K-means, fixed in advance'),
  rangeShare: z
    .number()
    .gt(0)
    .lt(0.5)
    .default(0.1)
    .describe('share of epsilon for the DP range estimate, when no bounds are given'),
  standardizeShare: z
    .number()
    .gt(0)
    .lt(0.5)
    .default(0.2)
    .describe('share of epsilon for the DP mean and standard deviation, when data.standardize is on'),
  budget: z
    .strictObject({
      epsilon: z.number().gt(0).default(10).describe('epsilon of a new dataset budget'),
      delta: z.number().gt(0).lt(1).default(1e-5).describe('delta of a new dataset budget'),
    })
    .default({ epsilon: 10, delta: 1e-5 })
    .describe('the budget a dataset gets when it is first charged (kept from then on)'),
  minClusterSize: z
    .int()
    .min(1)
    .optional()
    .describe('k-anonymity: no released cluster smaller (5 under epsilon; off otherwise unless set)'),
  smallClusters: z
    .enum(['merge', 'suppress'])
    .default('merge')
    .describe(
      'k-anonymity: merge a small cluster into its nearest neighbour, or suppress its rows (label -1)',
    ),
});
export type PrivacyConfig = z.infer<typeof privacySchema>;

/** Which files the engine may read, and how large they may be. */
export const securitySchema = z.strictObject({
  dataRoots: z
    .array(z.string().min(1))
    .default([])
    .describe('directories data may be read from (symbolic links count where they point); none: any file'),
  maxFileBytes: z
    .int()
    .min(1)
    .default(64 * 2 ** 30)
    .describe('largest data file read, in bytes'),
  maxRows: z.int().min(10_000_000).default(100_000_000).describe('most rows a data file may have'),
  maxColumns: z.int().min(1).default(1_000_000).describe('most columns a data file may have'),
  encryptModels: z
    .boolean()
    .default(true)
    .describe('encrypt model files at rest with the keyring (they are read either way)'),
  allowUnauthenticatedModels: z
    .boolean()
    .default(false)
    .describe(
      'read plain model files that carry no keyed checksum (written before keyed checksums, or by anyone): off, they are refused as NEUROCLUSTER_ERR_INTEGRITY',
    ),
  encryptResults: z
    .boolean()
    .default(false)
    .describe(
      'encrypt the result, labels and plot files the CLI writes with the keyring (read them with neurocluster decrypt)',
    ),
});

/** The tamper-evident audit log of the CLI's data reads, model writes, budget spends and key changes. */
export const auditSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('append a record of every security-relevant command'),
  retentionDays: z
    .number()
    .gt(0)
    .default(365)
    .describe('rotated audit files older than this are deleted (a signed checkpoint keeps the chain)'),
  maxBytes: z
    .int()
    .min(1024)
    .default(64 * 1024 * 1024)
    .describe('the audit file is rotated past this size'),
});

/** The configuration document (`--config file.json|yaml`). */
export const configSchema = z.strictObject({
  engine: engineSchema.default(engineSchema.parse({})),
  data: dataSchema.default(dataSchema.parse({})),
  encoders: z
    .strictObject({
      esn: esnSchema.default(esnSchema.parse({})),
      snn: snnSchema.default(snnSchema.parse({})),
      lsm: lsmSchema.default(lsmSchema.parse({})),
      hybrid: hybridSchema.default(hybridSchema.parse({})),
      members: z
        .union([z.literal('auto'), z.int().min(1).max(16)])
        .default('auto')
        .describe(
          "copies of the method's encoders, each with weights of its own, combined by `consensus` (a consensus over reservoirs); auto: 3 for hybrid on a series, else 1",
        ),
      consensus: z
        .enum(['auto', 'stack', 'co-association'])
        .default('auto')
        .describe(
          'how members combine: their features side by side before K-means (stack), or each member clustered on its own and K-means on how often members put two samples together (co-association); auto: co-association for hybrid on a series, else stack',
        ),
    })
    .default({
      esn: esnSchema.parse({}),
      snn: snnSchema.parse({}),
      lsm: lsmSchema.parse({}),
      hybrid: hybridSchema.parse({}),
      members: 'auto',
      consensus: 'auto',
    })
    .describe('neuromorphic encoder parameters (esn, snn, lsm, hybrid)'),
  kmeans: kmeansSchema.default(kmeansSchema.parse({})),
  stream: streamSchema.default(streamSchema.parse({})),
  output: outputSchema.default(outputSchema.parse({})),
  circuitBreaker: circuitBreakerSchema.default(circuitBreakerSchema.parse({})),
  retry: retrySchema.default(retrySchema.parse({})),
  timeout: duration('10m').describe(
    'one deadline for the neuromorphic path, retries and degradation included',
  ),
  fallback: fallbackSchema.default(fallbackSchema.parse({})),
  faults: faultsSchema.default(faultsSchema.parse({})),
  errorTracking: errorTrackingSchema.default(errorTrackingSchema.parse({})),
  monitoring: monitoringSchema.default(monitoringSchema.parse({})),
  qualityGates: qualityGatesSchema.default(qualityGatesSchema.parse({})),
  performance: performanceSchema.default(performanceSchema.parse({})),
  privacy: privacySchema.default(privacySchema.parse({})),
  security: securitySchema.default(securitySchema.parse({})),
  audit: auditSchema.default(auditSchema.parse({})),
  logging: loggingSchema.default(loggingSchema.parse({})),
  service: serviceSchema.default(serviceSchema.parse({})),
  distributed: distributedSchema.default(distributedSchema.parse({})),
  metrics: metricsSchema
    .default(metricsSchema.parse({}))
    .describe(
      'Prometheus metrics (NEUROCLUSTER_METRICS=off turns them off at start-up; --metrics-out and --pushgateway export a CLI run)',
    ),
});

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
export type EngineConfig = Config['engine'];
export type DataConfig = Config['data'];
export type KMeansConfig = Config['kmeans'];
export type EncodersConfig = Config['encoders'];
/** Encoder settings with their `auto` values made what they are for the kind of input. */
export type SettledEncoders = Omit<EncodersConfig, 'members' | 'consensus' | 'hybrid'> & {
  readonly members: number;
  readonly consensus: 'stack' | 'co-association';
  readonly hybrid: Omit<EncodersConfig['hybrid'], 'inputWeight'> & { readonly inputWeight: number };
};
/**
 * A configuration settled for its input: `auto` made the method, and the encoders' `auto`
 * settings, what they are for the kind of input.
 */
export type RunConfig = Omit<Config, 'engine' | 'encoders'> & {
  readonly engine: EngineConfig & { readonly method: Method };
  readonly encoders: SettledEncoders;
};
export type EsnConfig = EncodersConfig['esn'];
export type SnnConfig = EncodersConfig['snn'];
export type LsmConfig = EncodersConfig['lsm'];

/** A schema node without its default and optional wrappers, and the default it had. */
export function unwrapField(node: z.ZodType): { node: z.ZodType; defaultValue: unknown } {
  let current = node;
  let defaultValue: unknown;
  for (;;) {
    const def = (
      current as unknown as { def: { type: string; innerType?: z.ZodType; defaultValue?: unknown } }
    ).def;
    if (def.type === 'default') defaultValue = def.defaultValue;
    if ((def.type === 'default' || def.type === 'optional') && def.innerType) current = def.innerType;
    else return { node: current, defaultValue };
  }
}

/** A deep-partial document, as a file or a caller supplies it. */
export type ConfigOverrides = { [S in keyof ConfigInput]?: Partial<NonNullable<ConfigInput[S]>> };
