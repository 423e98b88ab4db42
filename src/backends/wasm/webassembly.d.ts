/**
 * The part of the WebAssembly JavaScript API this backend uses: Node provides it, but
 * @types/node 20 does not declare it (it comes with TypeScript's DOM library, not used here).
 */
declare namespace WebAssembly {
  interface MemoryDescriptor {
    initial: number;
    maximum?: number;
    shared?: boolean;
  }
  class Memory {
    constructor(descriptor: MemoryDescriptor);
    readonly buffer: ArrayBufferLike;
    grow(delta: number): number;
  }
  class Module {
    constructor(bytes: ArrayBufferView | ArrayBuffer);
  }
}
