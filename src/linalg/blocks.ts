/**
 * The host side of the feature pipeline's kernels: column moments and the feature matrix K-means
 * clusters put together from its blocks, the references of `columnMoments` and `assembleBlocks`,
 * run by the CPU backends and by a device backend for matrices too big to bind.
 */
import {
  checkOrder,
  type FeatureBlock,
  type Features,
  isDeviceMatrix,
  type Matrix,
  type Moments,
} from '../core/matrix.js';
import { columnMoments } from './moments.js';

/** The host values of a block; a block kept on a device is a programming error here. */
export function onHost(m: Features, what: string): Matrix {
  if (isDeviceMatrix(m)) {
    throw new TypeError(`${what}: the features are kept on the ${m.backend} device; read them first`);
  }
  return m;
}

/**
 * Column moments on the host (src/linalg/moments.ts), the order checked first: the reference of
 * the `columnMoments` kernel, run by the CPU backends and by a device backend for a host matrix
 * too big to bind.
 */
export function momentsOnHost(m: Features, order?: Int32Array): Moments {
  checkOrder(order, m.rows, 'columnMoments');
  return columnMoments(onHost(m, 'columnMoments'), order);
}

/** Checks the blocks' shapes: the same rows, one mean per kept column, columns in range. */
export function checkBlocks(
  blocks: readonly FeatureBlock[],
  order?: Int32Array,
): { rows: number; width: number } {
  if (blocks.length === 0) throw new RangeError('assembleBlocks: no blocks');
  const rows = blocks[0]!.features.rows;
  let width = 0;
  blocks.forEach(({ features, keep, means }, b) => {
    if (features.rows !== rows) {
      throw new RangeError(`assembleBlocks: block ${b} has ${features.rows} rows, block 0 has ${rows}`);
    }
    if (means.length !== keep.length) {
      throw new RangeError(
        `assembleBlocks: block ${b} keeps ${keep.length} columns but has ${means.length} means`,
      );
    }
    for (const j of keep) {
      if (!(Number.isInteger(j) && j >= 0 && j < features.cols)) {
        throw new RangeError(`assembleBlocks: block ${b} keeps column ${j} of ${features.cols}`);
      }
    }
    width += keep.length;
  });
  checkOrder(order, rows, 'assembleBlocks');
  return { rows, width };
}

/** Row i, block b, column c: (features_b[order[i], keep_b[c]] - means_b[c]) * scale_b. */
export function assembleOnHost(blocks: readonly FeatureBlock[], order?: Int32Array): Matrix {
  const { rows: n, width } = checkBlocks(blocks, order);
  const data = new Float64Array(n * width);
  let offset = 0;
  blocks.forEach((block, b) => {
    const m = onHost(block.features, `assembleBlocks block ${b}`);
    const { keep, means, scale } = block;
    for (let i = 0; i < n; i++) {
      const from = (order ? order[i]! : i) * m.cols;
      const to = i * width + offset;
      for (let c = 0; c < keep.length; c++) data[to + c] = (m.data[from + keep[c]!]! - means[c]!) * scale;
    }
    offset += keep.length;
  });
  return { rows: n, cols: width, data };
}
