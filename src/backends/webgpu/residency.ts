/**
 * Device buffers tied to host arrays: found by the array, returned to the pool when the array is
 * garbage-collected, or at once by {@link Residency.evictAll}.
 */
import type { BufferPool } from './pool.js';

export class Residency {
  private readonly buffers = new WeakMap<object, GPUBuffer>();
  private readonly keys = new Set<WeakRef<object>>();
  private readonly collected: FinalizationRegistry<{ buffer: GPUBuffer; key: WeakRef<object> }>;

  constructor(private readonly pool: BufferPool) {
    this.collected = new FinalizationRegistry(({ buffer, key }) => {
      this.keys.delete(key);
      this.pool.release(buffer);
    });
  }

  get(host: object): GPUBuffer | undefined {
    return this.buffers.get(host);
  }

  put(host: object, buffer: GPUBuffer): GPUBuffer {
    const key = new WeakRef(host);
    this.buffers.set(host, buffer);
    this.keys.add(key);
    this.collected.register(host, { buffer, key }, key);
    return buffer;
  }

  evictAll(): void {
    for (const key of this.keys) {
      const host = key.deref();
      const buffer = host && this.buffers.get(host);
      if (host && buffer) {
        this.buffers.delete(host);
        this.collected.unregister(key);
        this.pool.release(buffer);
      }
    }
    this.keys.clear();
  }
}
