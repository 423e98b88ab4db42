/**
 * The process's runtime, as far as its end is concerned: `defaultRuntime()` (runtime.ts) records
 * it here when it first makes it, and the command closes it when it ends. Kept apart from
 * runtime.ts so that a command that never made one (`--help`) does not load the engine to find out.
 */
let current: { close(): Promise<void> } | undefined;

export function recordProcessRuntime(runtime: { close(): Promise<void> }): void {
  current = runtime;
}

/** Closes the process's runtime (its backends' devices and workers), if one was made. */
export async function closeProcessRuntime(): Promise<void> {
  await current?.close();
}
