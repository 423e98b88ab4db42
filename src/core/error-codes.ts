/**
 * The table of error codes: every `NEUROCLUSTER_ERR_*` code with its category, severity, process
 * exit code and recovery actions. The CLI, the library, the error tracker and the error table of
 * docs/cli.md (`npm run docs:errors`) all read it, so they agree on what an error means.
 */

/** What kind of failure an error is. */
export type ErrorCategory =
  | 'validation'
  | 'configuration'
  | 'data'
  | 'kernel'
  | 'device-lost'
  | 'out-of-memory'
  | 'timeout'
  | 'circuit-open'
  | 'numerical'
  | 'resource-exhausted'
  | 'privacy-budget'
  | 'security'
  | 'quality'
  | 'backend'
  | 'cancelled'
  | 'io'
  | 'request'
  | 'internal';

/** How bad: `low` the caller's input, `medium` one request lost or degraded, up to `critical`. */
export type Severity = 'low' | 'medium' | 'high' | 'critical';

interface CodeInfo {
  readonly category: ErrorCategory;
  readonly severity: Severity;
  /** Process exit status: 2 for bad usage or bad input, 1 for any other failure. */
  readonly exitCode: 1 | 2;
  /** What to do about it, most useful first. */
  readonly recovery: readonly string[];
}

/** Every error code the engine raises, with its meaning. Codes are stable: scripts match on them. */
export const ERROR_CODES = {
  NEUROCLUSTER_ERR_USAGE: {
    category: 'validation',
    severity: 'low',
    exitCode: 2,
    recovery: ['Check the command line against `neurocluster --help`.'],
  },
  NEUROCLUSTER_ERR_INVALID_ARGUMENT: {
    category: 'validation',
    severity: 'low',
    exitCode: 2,
    recovery: ['Fix the named option; docs/configuration.md lists every option and its range.'],
  },
  NEUROCLUSTER_ERR_CONFIG: {
    category: 'configuration',
    severity: 'medium',
    exitCode: 2,
    recovery: ['Fix the named key of the configuration document.'],
  },
  NEUROCLUSTER_ERR_DATA_READ: {
    category: 'io',
    severity: 'low',
    exitCode: 2,
    recovery: ['Check that the input file exists and is readable.'],
  },
  NEUROCLUSTER_ERR_DATA_FORMAT: {
    category: 'data',
    severity: 'low',
    exitCode: 2,
    recovery: [
      'Check the file format: CSV with a header row, JSON or JSON Lines rows, Parquet, or a float32/float64 NPY array.',
    ],
  },
  NEUROCLUSTER_ERR_DATA_VALUE: {
    category: 'data',
    severity: 'low',
    exitCode: 2,
    recovery: ['Fix the named cell, or choose a NaN policy (drop-rows, impute-mean) for missing values.'],
  },
  NEUROCLUSTER_ERR_DATA_SHAPE: {
    category: 'data',
    severity: 'low',
    exitCode: 2,
    recovery: ['Check the number of rows and columns against the options (k, series length, model width).'],
  },
  NEUROCLUSTER_ERR_MODEL_FILE: {
    category: 'data',
    severity: 'medium',
    exitCode: 2,
    recovery: ['The model file is damaged or not a neurocluster model; restore it or fit again.'],
  },
  NEUROCLUSTER_ERR_MODEL_VERSION: {
    category: 'data',
    severity: 'low',
    exitCode: 2,
    recovery: ['The model was written by a newer neurocluster; upgrade to read it.'],
  },
  NEUROCLUSTER_ERR_BACKEND_UNAVAILABLE: {
    category: 'backend',
    severity: 'high',
    exitCode: 1,
    recovery: ['Choose another backend, or `--backend auto` to take the best one that starts.'],
  },
  NEUROCLUSTER_ERR_KERNEL: {
    category: 'kernel',
    severity: 'high',
    exitCode: 1,
    recovery: [
      'A compute kernel failed; the request is retried and, under `auto`, moved to the next backend.',
      "If it repeats, run `neurocluster health` to see whether the backend's circuit breaker is open.",
      'Name a CPU backend (`--backend wasm` or `js`) to keep the GPU out of the way.',
    ],
  },
  NEUROCLUSTER_ERR_DEVICE_LOST: {
    category: 'device-lost',
    severity: 'critical',
    exitCode: 1,
    recovery: [
      'The GPU device was lost (driver reset, or the GPU went away); the device is re-created and the request retried.',
      'Check the driver and `nvidia-smi` for resets; run on the CPU (`--backend wasm`) until it is stable.',
    ],
  },
  NEUROCLUSTER_ERR_OUT_OF_MEMORY: {
    category: 'out-of-memory',
    severity: 'high',
    exitCode: 1,
    recovery: [
      'Lower engine.webgpu.memoryBudgetMB so work is split into smaller chunks, or use a CPU backend.',
      'Free GPU memory held by other processes, or cluster fewer rows per request.',
    ],
  },
  NEUROCLUSTER_ERR_NUMERICAL: {
    category: 'numerical',
    severity: 'medium',
    exitCode: 1,
    recovery: [
      'A kernel produced NaN or infinity; check the input scale and the encoder settings.',
      "Turn standardization on (data.standardize) or lower the encoder's input scaling.",
    ],
  },
  NEUROCLUSTER_ERR_TIMEOUT: {
    category: 'timeout',
    severity: 'medium',
    exitCode: 1,
    recovery: [
      'The neuromorphic path ran past its deadline; raise --timeout (config `timeout`), or cluster fewer rows.',
      'A backend that hangs: run `neurocluster health` and name another backend.',
    ],
  },
  NEUROCLUSTER_ERR_CIRCUIT_OPEN: {
    category: 'circuit-open',
    severity: 'medium',
    exitCode: 1,
    recovery: [
      'The backend failed repeatedly and its circuit breaker is open; it is tried again after circuitBreaker.recoveryTimeout.',
      'Fix the backend, then `neurocluster breakers reset` to close the breaker at once.',
    ],
  },
  NEUROCLUSTER_ERR_RESOURCE_EXHAUSTED: {
    category: 'resource-exhausted',
    severity: 'high',
    exitCode: 1,
    recovery: [
      'The job would not fit in memory; cluster fewer rows, choose a smaller encoder (units, neurons), or plain kmeans.',
      'Raise monitoring.memoryBudgetMB if the machine has the memory, or run on a larger machine.',
    ],
  },
  NEUROCLUSTER_ERR_QUALITY_GATE: {
    category: 'quality',
    severity: 'medium',
    exitCode: 1,
    recovery: [
      'The clustering missed a quality gate in fail mode; try another k or method, or lower the gate (qualityGates).',
      'qualityGates.mode: warn reports failed gates in the result instead of failing.',
    ],
  },
  NEUROCLUSTER_ERR_PRIVACY_BUDGET: {
    category: 'privacy-budget',
    severity: 'medium',
    exitCode: 1,
    recovery: [
      'See what is left with `neurocluster privacy status --dataset <id>`; a spent budget does not come back.',
      'Ask for a smaller epsilon, or release fewer statistics (fewer iterations, public --bounds, no standardization).',
    ],
  },
  NEUROCLUSTER_ERR_PRIVACY_DATA: {
    category: 'data',
    severity: 'low',
    exitCode: 2,
    recovery: [
      'The data are too few for a DP range estimate at this epsilon: give public bounds (--bounds, privacy.bounds), or a larger epsilon, or more rows.',
    ],
  },
  NEUROCLUSTER_ERR_SECURITY: {
    category: 'security',
    severity: 'high',
    exitCode: 1,
    recovery: [
      'Check the keyring (NEUROCLUSTER_KEYRING, or $NEUROCLUSTER_HOME/keys/keyring.json): the key the file names must be in it and not retired. A model made on another machine moves with `model export --recipient` there and `model import --identity` here.',
    ],
  },
  NEUROCLUSTER_ERR_SECURITY_PATH: {
    category: 'security',
    severity: 'medium',
    exitCode: 2,
    recovery: [
      'Read data from inside security.dataRoots, or add the directory to them (symbolic links count where they point).',
      "Write outputs outside the engine's own files: $NEUROCLUSTER_HOME/keys, $NEUROCLUSTER_HOME/audit, the store (neurocluster.db) and the keyring.",
    ],
  },
  NEUROCLUSTER_ERR_INTEGRITY: {
    category: 'security',
    severity: 'critical',
    exitCode: 1,
    recovery: [
      'The file or record was changed after it was written: restore it from a backup and find out who changed it (the audit log says who wrote it).',
    ],
  },
  NEUROCLUSTER_ERR_ABORTED: {
    category: 'cancelled',
    severity: 'low',
    exitCode: 1,
    recovery: ['The operation was cancelled by its caller.'],
  },
  NEUROCLUSTER_ERR_IO: {
    category: 'io',
    severity: 'medium',
    exitCode: 1,
    recovery: ['Check that the output location exists, is writable and has free space.'],
  },
  NEUROCLUSTER_ERR_UNAUTHORIZED: {
    category: 'request',
    severity: 'low',
    exitCode: 2,
    recovery: [
      'Send `Authorization: Bearer <key>` with a key from `neurocluster api-keys create`; a revoked key is refused with NEUROCLUSTER_ERR_SECURITY.',
    ],
  },
  NEUROCLUSTER_ERR_NOT_FOUND: {
    category: 'request',
    severity: 'low',
    exitCode: 2,
    recovery: ['Check the job id (`GET /v1/jobs` lists them) and the route (`docs/service.md`).'],
  },
  NEUROCLUSTER_ERR_CONFLICT: {
    category: 'request',
    severity: 'low',
    exitCode: 2,
    recovery: [
      "Wait for the job's final state (`GET /v1/jobs/:id`): labels and results exist once it succeeded.",
    ],
  },
  NEUROCLUSTER_ERR_TOO_LARGE: {
    category: 'request',
    severity: 'low',
    exitCode: 2,
    recovery: [
      'Send at most service.maxBodyBytes, or post a `source.path` the service can read inside security.dataRoots.',
    ],
  },
  NEUROCLUSTER_ERR_RATE_LIMIT: {
    category: 'request',
    severity: 'low',
    exitCode: 2,
    recovery: ['Wait for the time the Retry-After header says, or ask for a higher service.rateLimit.max.'],
  },
  NEUROCLUSTER_ERR_QUOTA: {
    category: 'request',
    severity: 'low',
    exitCode: 2,
    recovery: [
      "The tenant's quota is reached: wait for the time the Retry-After header says where there is one (a job ends, the hour moves on).",
      'Delete finished jobs to free stored bytes, send fewer rows, or ask for a higher quota (`neurocluster tenants set`, service.quotas).',
    ],
  },
  NEUROCLUSTER_ERR_INTERNAL: {
    category: 'internal',
    severity: 'critical',
    exitCode: 1,
    recovery: ['This is a bug in neurocluster; please report it with the command that caused it.'],
  },
} as const satisfies Record<string, CodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;
