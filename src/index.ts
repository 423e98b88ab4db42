/**
 * neurocluster: the public API. Everything a library user needs is exported here, nothing else.
 */

export {
  type Backend,
  type BackendFactory,
  BackendRegistry,
  createBackendRegistry,
  defaultRegistry,
} from './backends/index.js';
export { JsBackend } from './backends/js/js-backend.js';
export { builtinGates, type GateFailure, type GateInput, type QualityGate } from './cluster/gates.js';
export {
  type KMeansFit,
  type KMeansOptions,
  type KMeansProgress,
  kmeans,
  kmeansSteps,
} from './cluster/kmeans.js';
export {
  calinskiHarabasz,
  daviesBouldin,
  type ExternalQuality,
  externalQuality,
  type InternalQuality,
  internalQuality,
  silhouetteScore,
} from './cluster/metrics.js';
export { type ClustererOptions, type DataInput, NeuromorphicClusterer } from './clusterer.js';
export { FAULT_KINDS, type FaultKind, type FaultSpec, parseFault } from './config/faults.js';
export { neuroclusterHome } from './config/home.js';
export { readConfigFile, resolveConfig } from './config/load.js';
export {
  type Config,
  type ConfigOverrides,
  configSchema,
  ENCODER_METHODS,
  type EncoderMethod,
  type EncodersConfig,
  METHODS,
  type Method,
  NAN_POLICIES,
} from './config/schema.js';
export { AbortedError } from './core/cancel.js';
export { ERROR_CODES, type ErrorCategory, type ErrorCode, type Severity } from './core/error-codes.js';
export {
  BackendError,
  CircuitOpenError,
  ConfigError,
  DataError,
  type ErrorContext,
  isNeuroclusterError,
  ModelFileError,
  NeuroclusterError,
  OutputError,
  PrivacyBudgetError,
  QualityGateError,
  SecurityError,
  TimeoutError,
  UsageError,
} from './core/errors.js';
export {
  type Assignment,
  BACKEND_NAMES,
  type BackendName,
  type ClusterSums,
  type DeviceMatrix,
  type FeatureBlock,
  type Features,
  type Floats,
  isDeviceMatrix,
  type LloydStep,
  type Matrix,
  type Moments,
  readFeatures,
} from './core/matrix.js';
export { VERSION } from './core/version.js';
export type { Dataset, SeriesLayout } from './data/dataset.js';
export { datasetFromRows } from './data/load.js';
export type { EncodeProgress } from './encoders/drive.js';
export type { PipelineState } from './encoders/pipeline.js';
export type { FitOptions } from './fit/options.js';
export {
  type ClusterAssignment,
  ClusteringResult,
  type PassProgress,
  type Timings,
} from './fit/result.js';
export type { Prediction } from './fit/streamed-predict.js';
export {
  type BreakerStatus,
  type CheckStatus,
  type HealthCheck,
  type HealthReport,
  healthz,
  liveness,
  readiness,
} from './observability/health.js';
export { createLogger, type Logger } from './observability/logger.js';
export {
  EngineMetrics,
  HEALTH_WEIGHTS,
  type HealthParts,
  healthScore,
  metrics,
} from './observability/metrics.js';
export {
  type OperationRecord,
  type OperationState,
  OperationTracker,
  operations,
} from './observability/operations.js';
export { renderClusterPlot } from './report/svg-plot.js';
export { BreakerBook } from './resilience/breakers.js';
export type { FallbackReason } from './resilience/policy.js';
export { type Alert, type AlertRule, type ErrorRecord, ErrorTracker } from './resilience/tracker.js';
export {
  createRuntime,
  defaultRuntime,
  errorTrackerFor,
  Runtime,
  type RuntimeOptions,
} from './runtime/runtime.js';
export {
  AnomalyDetector,
  type AnomalyRule,
  type AnomalySettings,
  builtinRules,
  type SecurityEvent,
} from './security/anomaly.js';
export { ACTION_RISK, AuditLog, riskOf } from './security/audit.js';
export type { AuditEvent, AuditOutcome, AuditRecord } from './security/audit-record.js';
export { type AuditVerdict, verifyAuditLog } from './security/audit-verify.js';
export { backupModel, exportModelForAge, restoreModel } from './security/backup.js';
export {
  assertKeyUnused,
  EncryptedFileRegistry,
  encryptFileTracked,
  type RewrapReport,
  rewrapAll,
  type TrackedFile,
  writeEncryptedFile,
} from './security/encrypted-files.js';
export {
  decryptBuffer,
  decryptFile,
  encryptBuffer,
  encryptFile,
  fileWrappedWith,
  isEncrypted,
  readFileDecrypted,
  rewrapFile,
} from './security/envelope.js';
export {
  type AnonymityOptions,
  type AnonymityReport,
  enforceMinClusterSize,
  type SmallClusterStrategy,
} from './security/kanonymity.js';
export { Keyring } from './security/keyring.js';
export {
  type BudgetStatus,
  DEFAULT_BUDGET,
  datasetId,
  epsilonOfRho,
  PrivacyAccountant,
  type PrivacyBudget,
  rhoForEpsilon,
} from './security/privacy/accountant.js';
export {
  type AnonymizedRelease,
  type AnonymizeOptions,
  anonymizeClusteringResults,
  getPrivacyBudgetStatus,
  type PrivacyReport,
  type PrivacyResult,
  privacyAccountant,
} from './security/privacy/api.js';
export { type DpKMeansOptions, type DpKMeansResult, dpKMeans } from './security/privacy/dp-kmeans.js';
export {
  gaussianMechanism,
  laplaceMechanism,
  type Mechanism,
  mechanism,
  registerMechanism,
  type Sensitivity,
} from './security/privacy/mechanisms.js';
export { sampleDiscreteGaussian, sampleDiscreteLaplace } from './security/privacy/samplers.js';
export {
  checkDataPath,
  loadDatasetFile as loadDataset,
  SecureDataProcessor,
  type SecureLoadOptions,
} from './security/secure-load.js';
