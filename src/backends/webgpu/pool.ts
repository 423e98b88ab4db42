/**
 * A pool of device buffers keyed by usage and size class, counting the bytes it holds: in use,
 * allocated (in use plus idle) and the peak of allocated, and apart from those the readback
 * buffers, which a discrete GPU keeps in host memory (they do not show in its used memory). Sizes
 * round up to a power of two (at least 256 bytes) so that a chunked run reuses its buffers from
 * chunk to chunk and step to step.
 */
import { BackendError } from '../../core/errors.js';

export interface PoolStats {
  readonly bytesInUse: number;
  /** Everything allocated, readback buffers included; what the budget bounds. */
  readonly bytesAllocated: number;
  readonly peakBytesAllocated: number;
  /** Of those, readback (MAP_READ) buffers, host memory on a discrete GPU. */
  readonly readbackBytesAllocated: number;
  /** The peak of the others: what the device's own memory held at most. */
  readonly peakDeviceBytesAllocated: number;
  readonly buffersAllocated: number;
}

const MAP_READ = 0x1;

/** Smallest pooled size; small uniform and readback buffers share it. */
const MIN_BYTES = 256;

export function sizeClass(bytes: number): number {
  return Math.max(MIN_BYTES, 2 ** Math.ceil(Math.log2(Math.max(1, bytes))));
}

export class BufferPool {
  private readonly idle = new Map<string, GPUBuffer[]>();
  private readonly live = new Map<GPUBuffer, string>();
  private inUse = 0;
  private allocated = 0;
  private peak = 0;
  private readback = 0;
  private peakDevice = 0;

  constructor(
    private readonly device: GPUDevice,
    /** Most bytes the pool may hold allocated at once. */
    public budgetBytes: number,
    /** The device's largest single buffer. */
    private readonly maxBufferBytes: number,
  ) {}

  /** A buffer of at least `bytes` with exactly `usage`; returned to the pool by {@link release}. */
  acquire(bytes: number, usage: number, label: string): GPUBuffer {
    const size = sizeClass(bytes);
    const key = `${usage}:${size}`;
    const reused = this.idle.get(key)?.pop();
    if (reused) {
      this.live.set(reused, key);
      this.inUse += size;
      return reused;
    }
    if (size > this.maxBufferBytes) {
      throw new BackendError(
        `${label}: a ${size}-byte buffer exceeds the device's largest buffer (${this.maxBufferBytes} bytes)`,
        'NEUROCLUSTER_ERR_OUT_OF_MEMORY',
      );
    }
    if (this.allocated + size > this.budgetBytes) this.trim();
    if (this.allocated + size > this.budgetBytes) {
      throw new BackendError(
        `${label}: ${size} more bytes would pass the device-memory budget (${this.allocated} of ${this.budgetBytes} in use)`,
        'NEUROCLUSTER_ERR_OUT_OF_MEMORY',
      );
    }
    const buffer = this.device.createBuffer({ size, usage, label });
    this.live.set(buffer, key);
    this.allocated += size;
    if (usage & MAP_READ) this.readback += size;
    this.inUse += size;
    this.peak = Math.max(this.peak, this.allocated);
    this.peakDevice = Math.max(this.peakDevice, this.allocated - this.readback);
    return buffer;
  }

  release(...buffers: GPUBuffer[]): void {
    for (const buffer of buffers) {
      const key = this.live.get(buffer);
      if (key === undefined) continue;
      this.live.delete(buffer);
      this.inUse -= buffer.size;
      let list = this.idle.get(key);
      if (!list) {
        list = [];
        this.idle.set(key, list);
      }
      list.push(buffer);
    }
  }

  /** Destroys every idle buffer, giving its memory back to the device. */
  trim(): void {
    for (const list of this.idle.values()) {
      for (const buffer of list) {
        this.allocated -= buffer.size;
        if (buffer.usage & MAP_READ) this.readback -= buffer.size;
        buffer.destroy();
      }
    }
    this.idle.clear();
  }

  stats(): PoolStats {
    let count = this.live.size;
    for (const list of this.idle.values()) count += list.length;
    return {
      bytesInUse: this.inUse,
      bytesAllocated: this.allocated,
      peakBytesAllocated: this.peak,
      readbackBytesAllocated: this.readback,
      peakDeviceBytesAllocated: this.peakDevice,
      buffersAllocated: count,
    };
  }

  /** Destroys everything (the device is going away). */
  destroy(): void {
    this.trim();
    for (const buffer of this.live.keys()) buffer.destroy();
    this.live.clear();
    this.allocated = 0;
    this.readback = 0;
    this.inUse = 0;
  }
}
