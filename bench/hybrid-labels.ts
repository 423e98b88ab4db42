/**
 * Writes the labels of the GPU proof's `hybrid` fit (bench/hybrid-fit.ts) on a CPU backend, as
 * little-endian int32, for the GPU run to compare its own with; prints the fit's figures.
 *
 *   node dist/bench/hybrid-labels.js --n 1000000 --backend wasm --out .gpu-data/hybrid-1000000.i32
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { defaultRegistry } from '../src/backends/index.js';
import { hybridFit } from './hybrid-fit.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      n: { type: 'string', default: '1000000' },
      backend: { type: 'string', default: 'wasm' },
      out: { type: 'string' },
    },
  });
  const { backend } = await defaultRegistry.select(values.backend as 'js' | 'wasm' | 'webgpu');
  const fit = await hybridFit(backend, Number(values.n));
  if (values.out) writeFileSync(values.out, new Uint8Array(fit.labels.buffer));
  process.stdout.write(
    `${JSON.stringify({ fit: 'hybrid', backend: backend.name, n: fit.n, seconds: fit.seconds, timings: fit.timings, truthAri: fit.truthAri, maxRssMB: Math.round(process.resourceUsage().maxRSS / 1024) })}\n`,
  );
  await defaultRegistry.disposeAll();
}

await main();
