/**
 * A fitted model to and from its file (src/security/model-file.ts): encrypted, or plain with a
 * checksum keyed from the keyring, so a file put in its place by someone without the keyring is
 * refused either way.
 */
import type { Config, Method } from '../config/schema.js';
import { VERSION } from '../core/version.js';
import type { Scaler } from '../data/clean.js';
import type { PipelineState } from '../encoders/pipeline.js';
import type { Keyring } from '../security/keyring.js';
import { fromPortable, toPortable, writeModelFile } from '../security/model-file.js';

/** What a fit leaves to predict with. */
export interface FittedModel {
  /** The method the model's features come from (kmeans after a fallback). */
  method: Method;
  scaler: Scaler;
  pipeline: PipelineState | undefined;
  centroids: Float64Array;
  k: number;
  d: number;
}

/** Writes the fitted model with the configuration it was fitted under; its size in bytes. */
export function writeFitted(
  path: string,
  config: Config,
  model: FittedModel,
  keyring: Keyring,
): Promise<number> {
  return writeModelFile(
    path,
    {
      method: model.method,
      createdWith: `neurocluster ${VERSION}`,
      parameters: config as unknown as Record<string, unknown>,
      scaler: {
        ...model.scaler,
        keep: [...model.scaler.keep],
        means: [...model.scaler.means],
        scales: [...model.scaler.scales],
        inputColumns: [...model.scaler.inputColumns],
      },
      k: model.k,
      d: model.d,
      centroids: Array.from(model.centroids),
      ...(model.pipeline ? { encoder: toPortable(model.pipeline) } : {}),
    },
    keyring,
    { encrypt: config.security.encryptModels },
  );
}

/** The model a file holds, as a fit would have left it. */
export function fittedFrom(body: {
  method: string;
  scaler: Scaler;
  encoder?: unknown;
  centroids: readonly number[];
  k: number;
  d: number;
}): FittedModel {
  return {
    method: body.method as Method,
    scaler: body.scaler,
    pipeline: body.encoder === undefined ? undefined : (fromPortable(body.encoder) as PipelineState),
    centroids: Float64Array.from(body.centroids),
    k: body.k,
    d: body.d,
  };
}
