/**
 * Files are written whole or not at all: a temporary sibling, renamed over the target once it is
 * complete; a failure removes the temporary.
 *
 * - Temporaries are named `.<name>.<pid>.<random>.tmp`, so the process that owns one can be told
 *   from its name: {@link removeStaleTemporaries} deletes those of processes that are gone (a
 *   SIGKILL mid-write), in the home's directories once per process (the store's open) and next to
 *   an output before it is written again.
 * - Outputs ({@link writeFileAtomic}, {@link writeStreamAtomic}) never land on the engine's own
 *   files: the home's `keys/` and `audit/`, its store (`neurocluster.db` and its `-wal`, `-shm`,
 *   `-journal`) and the keyring file, judged by real path ({@link assertNotEngineFile}).
 * - Inside {@link StagedWrites.run} an output stops at its complete temporary: the caller renames
 *   them into place ({@link StagedWrites.commit}) only once the writes are audited, or removes them.
 * - The engine's own state ({@link writeStateFileSync}: breakers, baselines, the keyring) is
 *   written the same way, without the guard.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { readdirSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { type FileHandle, open, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { isNeuroclusterError, OutputError, SecurityError, storageError } from './errors.js';

/** Temporaries this process is writing now: its own pid in a name does not make them stale. */
const inFlight = new Set<string>();

/** A hidden temporary sibling of `path`, unique to this write, naming this process. */
export function temporaryOf(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

/** `.<name>.<pid>.<12 hex>.tmp`: the name, then the pid. */
const TEMPORARY = /^\.(.+)\.(\d+)\.[0-9a-f]{12}\.tmp$/;
/** What versions before 0.x left in the home: `<name>.<pid>.tmp` (state), `<name>.<pid>.<8 hex>.tmp` (keyring). */
const LEGACY_TEMPORARY = /^([^.].*)\.(\d+)(?:\.[0-9a-f]{8})?\.tmp$/;

/**
 * A temporary younger than this is kept even when its pid is not running here: a process of
 * another PID namespace (a container sharing the home) may be writing it.
 */
export const STALE_TEMPORARY_MS = 30_000;

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, as another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the temporaries in `dir` (of the target `name` only, when given) whose process is not
 * running, and older than {@link STALE_TEMPORARY_MS}; returns their paths. `legacy` also takes the
 * names earlier versions gave the engine's state temporaries. Never throws: a directory that
 * cannot be read or a file that cannot be removed is left as it is.
 */
export function removeStaleTemporaries(
  dir: string,
  name?: string,
  { now = Date.now(), legacy = false }: { now?: number; legacy?: boolean } = {},
): string[] {
  const removed: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return removed;
  }
  for (const entry of entries) {
    const m = TEMPORARY.exec(entry) ?? (legacy ? LEGACY_TEMPORARY.exec(entry) : null);
    if (!m || (name !== undefined && m[1] !== name)) continue;
    const path = join(dir, entry);
    const pid = Number(m[2]);
    if (pid === process.pid ? inFlight.has(path) : running(pid)) continue;
    try {
      const s = statSync(path);
      if (!s.isFile() || now - s.mtimeMs < STALE_TEMPORARY_MS) continue;
      rmSync(path, { force: true });
      removed.push(path);
    } catch {
      // gone meanwhile, or not ours to remove
    }
  }
  return removed;
}

const sweptHomes = new Set<string>();

/**
 * Once per process and home: the stale temporaries of the home and of each directory in it
 * (`state/`, `keys/`, `audit/`, `models/`, ...). Cheap: one directory listing each.
 */
export function sweepHome(home: string): void {
  if (sweptHomes.has(home)) return;
  sweptHomes.add(home);
  removeStaleTemporaries(home, undefined, { legacy: true });
  let entries: import('node:fs').Dirent[];
  try {
    entries = readdirSync(home, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries)
    if (e.isDirectory()) removeStaleTemporaries(join(home, e.name), undefined, { legacy: true });
}

/** The real path of `path`: its longest existing prefix resolved (symbolic links, `..`), the rest appended. */
export function realPathOf(path: string): string {
  const full = resolve(path);
  try {
    // The system's realpath(3): one call, where Node's own walks the path an lstat at a time.
    return realpathSync.native(full);
  } catch {
    const parent = dirname(full);
    return parent === full ? full : join(realPathOf(parent), basename(full));
  }
}

const within = (path: string, dir: string) =>
  path === dir || path.startsWith(dir.endsWith(sep) ? dir : dir + sep);

/** Where the engine keeps its own files: the home (store, keys/, audit/) and the keyring file. */
export interface EngineFiles {
  readonly home: string;
  readonly keyring?: string | undefined;
}

/** The engine's files of the homes written from so far (a few in a process; tests make many). */
const engineFilesSeen = new Map<string, { dirs: string[]; files: string[] }>();

/**
 * What an output must not be: the engine's own files, by real path. Resolved once for a home and
 * keyring (eight real paths, on every write otherwise): the engine makes these files itself, where
 * their home resolves to, and a home is not moved under a running process.
 */
function engineFiles({ home, keyring }: EngineFiles): { dirs: string[]; files: string[] } {
  const name = `${resolve(home)}\0${keyring ? resolve(keyring) : ''}`;
  const seen = engineFilesSeen.get(name);
  if (seen) return seen;
  const store = join(home, 'neurocluster.db');
  const files = ['', '-wal', '-shm', '-journal'].map((s) => realPathOf(store + s));
  if (keyring) files.push(realPathOf(keyring), realPathOf(`${keyring}.lock`));
  const found = { dirs: [realPathOf(join(home, 'keys')), realPathOf(join(home, 'audit'))], files };
  if (engineFilesSeen.size >= 64) engineFilesSeen.delete(engineFilesSeen.keys().next().value as string);
  engineFilesSeen.set(name, found);
  return found;
}

/**
 * Refuses (NEUROCLUSTER_ERR_SECURITY_PATH) a target that is, or may replace, one of the engine's
 * own files: judged both by the real path of its directory (what a rename replaces) and by the
 * real path of the target itself (a symbolic link to the keyring is refused too).
 */
export function assertNotEngineFile(path: string, engine: EngineFiles): void {
  const full = resolve(path);
  const candidates = new Set([join(realPathOf(dirname(full)), basename(full)), realPathOf(full)]);
  const { dirs, files } = engineFiles(engine);
  for (const real of candidates) {
    const dir = dirs.find((d) => within(real, d));
    if (dir || files.includes(real)) {
      throw new SecurityError(
        `refusing to write ${path}: it is ${dir ? `inside ${dir}` : real}, one of the engine's own files (keyring, audit log, store); write outputs elsewhere`,
        { path: true, location: { file: path } },
      );
    }
  }
}

const outputError = (path: string, cause: unknown) =>
  storageError(cause, `cannot write ${path}`, { file: path }) ??
  new OutputError(`cannot write ${path}: ${(cause as Error).message}`, { cause, location: { file: path } });

/** Temporaries complete and waiting for their rename, of the StagedWrites whose run() this is. */
const staging = new AsyncLocalStorage<{ tmp: string; path: string }[]>();

/**
 * Outputs written in {@link run} stop at their complete temporaries (the bytes are on disk, the
 * targets untouched); {@link commit} renames them into place in the order they were written,
 * {@link discard} removes them. The CLI audits the writes in between: nothing it writes appears
 * without its audit record.
 */
export class StagedWrites {
  private readonly pending: { tmp: string; path: string }[] = [];

  run<T>(work: () => Promise<T>): Promise<T> {
    return staging.run(this.pending, work);
  }

  /** Renames every staged temporary over its target; at the first failure the rest are removed. */
  async commit(): Promise<void> {
    while (this.pending.length > 0) {
      const { tmp, path } = this.pending[0]!;
      try {
        await rename(tmp, path);
      } catch (cause) {
        await this.discard();
        throw outputError(path, cause);
      } finally {
        inFlight.delete(tmp);
      }
      this.pending.shift();
    }
  }

  /** Removes every staged temporary (the targets stay as they were). */
  async discard(): Promise<void> {
    for (const { tmp } of this.pending.splice(0)) {
      await rm(tmp, { force: true });
      inFlight.delete(tmp);
    }
  }
}

/**
 * The target resolved once: the real directory it is renamed into, checked against the engine's
 * files, with the stale temporaries of earlier writes of it removed.
 */
function prepareOutput(path: string, engine: EngineFiles): { target: string; tmp: string } {
  assertNotEngineFile(path, engine);
  const full = resolve(path);
  const dir = realPathOf(dirname(full));
  removeStaleTemporaries(dir, basename(full));
  const target = join(dir, basename(full));
  const tmp = temporaryOf(target);
  inFlight.add(tmp);
  return { target, tmp };
}

/** The complete temporary goes over its target, or waits for the commit of the staged writes. */
async function finish(tmp: string, target: string): Promise<void> {
  const stage = staging.getStore();
  if (stage) {
    stage.push({ tmp, path: target });
    return;
  }
  await rename(tmp, target);
  inFlight.delete(tmp);
}

async function abandon(tmp: string): Promise<void> {
  await rm(tmp, { force: true });
  inFlight.delete(tmp);
}

/**
 * Writes to a temporary sibling (0644, or `mode`, less the umask), then renames it over the target.
 * `engine` names the engine's own files, which no output may replace.
 */
export async function writeFileAtomic(
  path: string,
  content: string | Uint8Array,
  options: { engine: EngineFiles; mode?: number },
): Promise<void> {
  const { target, tmp } = prepareOutput(path, options.engine);
  try {
    await writeFile(tmp, content, { mode: options.mode ?? 0o644 });
    await finish(tmp, target);
  } catch (cause) {
    await abandon(tmp);
    throw outputError(path, cause);
  }
}

/**
 * The streaming form: `write` fills a temporary sibling (owner-only unless `mode` says otherwise,
 * under the umask), which is synced and renamed
 * over `path` once it is done, so `path` appears whole or not at all. A failure to write is an
 * output error naming `path`; the engine's own errors from `write` (a chunk that does not
 * authenticate) pass through as they are.
 */
export async function writeStreamAtomic(
  path: string,
  engine: EngineFiles,
  write: (file: FileHandle) => Promise<void>,
  mode = 0o600,
): Promise<void> {
  const { target, tmp } = prepareOutput(path, engine);
  let file: FileHandle;
  try {
    file = await open(tmp, 'w', mode);
  } catch (cause) {
    inFlight.delete(tmp);
    throw outputError(path, cause);
  }
  try {
    await write(file);
    await file.sync();
    await file.close();
    await finish(tmp, target);
  } catch (error) {
    await file.close().catch(() => {});
    await abandon(tmp);
    throw isNeuroclusterError(error) ? error : outputError(path, error);
  }
}

/**
 * An engine state file (breakers, baselines, the keyring) written whole through a temporary
 * sibling, which a failure removes; the error (ENOSPC, ...) is the caller's to judge.
 */
export function writeStateFileSync(path: string, content: string, options: { mode?: number } = {}): void {
  const tmp = temporaryOf(path);
  inFlight.add(tmp);
  try {
    writeFileSync(tmp, content, { mode: options.mode ?? 0o644 });
    renameSync(tmp, path);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  } finally {
    inFlight.delete(tmp);
  }
}
