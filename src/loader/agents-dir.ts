// Watches the agents directory: every .wasm present at start is loaded at once; a file dropped in
// later is loaded once its size and mtime have held still for one scan (so a half-copied file is not
// read). Files directly in the directory and `<dir>/<name>/agent.wasm` are agents; links are followed
// the same way at both levels. Only regular files are ever read: a FIFO, a directory named *.wasm or a
// dangling link is skipped and reported once. A file that fails to load is reported once and retried
// only when it or the manifest beside it changes, or, when it met a full disk, unchanged at growing
// intervals. Loads run side by side and a scan never waits for one: a module that hangs
// while loading (bounded by the tick timeout) holds up no other file.
import { type Dirent, existsSync, lstatSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { ErrorCode, IgordError } from "../errors.js";
import { nextDiskFullRetryMs } from "../files/disk-full-retry.js";
import { describeProblem, regularFileProblem } from "../files/regular-file.js";
import { findManifest } from "../manifest/manifest.js";

/** Poll period; a new file starts within two periods plus its load time. */
export const AGENTS_DIR_SCAN_MS = 500;

interface Seen {
  signature: string;
  handled: boolean;
  /** A load that met a full disk: the wait before trying the unchanged file again (monotonic ms), when, and its load's `changed`. */
  retryMs?: number;
  retryAt?: number;
  changed?: boolean;
}

/**
 * `changed`: the file changed (or appeared) while the directory was watched, a write made now; false
 * for what the scan at start finds, whose history the watcher does not know.
 */
export type LoadFn = (wasmPath: string, changed: boolean) => Promise<void>;
/** Told once per entry (and again only if the reason changes) that it is not loaded, and why. */
export type SkipFn = (path: string, reason: string) => void;

export class AgentsDirWatcher {
  private readonly seen = new Map<string, Seen>();
  private readonly skipped = new Map<string, string>();
  private readonly loading = new Set<string>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly dir: string,
    private readonly load: LoadFn,
    private readonly onSkip: SkipFn = () => undefined,
  ) {}

  /** Throws CONFIG_INVALID, naming the flag, when the directory exists but cannot be listed (a file, no permission). */
  checkDir(): void {
    if (existsSync(this.dir)) this.entries();
  }

  private entries(): Dirent[] {
    try {
      return readdirSync(this.dir, { withFileTypes: true });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why = code === "ENOTDIR" ? "is not a directory" : `cannot be read (${code ?? (e as Error).message})`;
      throw new IgordError(ErrorCode.ConfigInvalid, `--agents-dir ${this.dir} ${why}`, { details: { path: this.dir, errno: code ?? null, why } });
    }
  }

  /** The agent files to load now: regular files (links followed); the rest is reported as skipped. */
  listWasm(): string[] {
    if (!existsSync(this.dir)) return [];
    const candidates: string[] = [];
    for (const entry of this.entries()) {
      const path = join(this.dir, entry.name);
      if (entry.name.endsWith(".wasm")) {
        candidates.push(path);
        continue;
      }
      // `<dir>/<name>/agent.wasm`, through a link to a directory too; anything else is not an agent.
      if (!entry.isDirectory() && !(entry.isSymbolicLink() && isDirectory(path))) continue;
      const nested = join(path, "agent.wasm");
      if (exists(nested)) candidates.push(nested);
    }
    const out: string[] = [];
    const present = new Set(candidates);
    for (const path of candidates) {
      const problem = regularFileProblem(path);
      if (problem === null) {
        this.skipped.delete(path);
        out.push(path);
        continue;
      }
      const reason = describeProblem(problem);
      if (this.skipped.get(path) !== reason) {
        this.skipped.set(path, reason);
        this.onSkip(path, reason);
      }
    }
    for (const path of this.skipped.keys()) if (!present.has(path)) this.skipped.delete(path);
    return out.sort();
  }

  /**
   * What a load of the agent at `path` reads, as of now: the .wasm's size and mtime, and those of the
   * manifest beside it (or that there is none). A manifest copied in after its .wasm is a change, so
   * a load it would have let through is tried again (and one written in turn with its .wasm settles
   * with it).
   */
  private signature(path: string): string | null {
    try {
      const s = statSync(path);
      const manifest = findManifest(path);
      return `${s.size}:${s.mtimeMs}:${manifest === null ? "no manifest" : `${manifest}:${fileStamp(manifest)}`}`;
    } catch {
      return null;
    }
  }

  /** Loads everything present now, without waiting for files to settle. */
  async initialScan(): Promise<void> {
    await this.scan(true);
  }

  start(): void {
    const tick = async (): Promise<void> => {
      try {
        await this.scan(false);
        this.skipped.delete(this.dir);
      } catch (e) {
        // The directory went away as a directory (replaced by a file, its permissions changed):
        // reported once, and scanned again at the next period; the agents loaded from it run on.
        const why = e instanceof IgordError ? e.details.why : undefined;
        const reason = `${typeof why === "string" ? why : (e as Error).message} (--agents-dir): the agents loaded from it run on`;
        if (this.skipped.get(this.dir) !== reason) {
          this.skipped.set(this.dir, reason);
          this.onSkip(this.dir, reason);
        }
      }
      if (this.timer) this.timer = setTimeout(tick, AGENTS_DIR_SCAN_MS);
    };
    this.timer = setTimeout(tick, AGENTS_DIR_SCAN_MS);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Starts the loads this scan finds due; `immediate` (the initial scan) also waits for them. */
  private async scan(immediate: boolean): Promise<void> {
    const started: Promise<void>[] = [];
    const present = this.listWasm();
    // A path whose file is gone is forgotten (a deploy that drops versioned builds and removes the
    // old ones would leave one entry per file ever dropped); a file put back there is a new one.
    const listed = new Set(present);
    for (const path of this.seen.keys()) if (!listed.has(path)) this.seen.delete(path);
    for (const path of present) {
      if (this.loading.has(path)) continue;
      const sig = this.signature(path);
      if (sig === null) continue;
      const prev = this.seen.get(path);
      const retryDue = prev?.retryAt !== undefined && performance.now() >= prev.retryAt;
      if (prev && prev.signature === sig && prev.handled && !retryDue) continue;
      if (!immediate && (!prev || prev.signature !== sig)) {
        this.seen.set(path, { signature: sig, handled: false }); // wait one scan for the file to settle
        continue;
      }
      // A retry is the same file as the load that met the full disk: as changed as it was then.
      const changed = retryDue ? prev?.changed === true : !immediate;
      const seen: Seen = { signature: sig, handled: true, changed, ...(retryDue && prev?.retryMs !== undefined ? { retryMs: prev.retryMs } : {}) };
      this.seen.set(path, seen);
      this.loading.add(path);
      started.push(
        this.load(path, changed)
          .catch((e: unknown) => {
            // Reported by the loader; retried when the file changes, or, after a full disk (which
            // passes), unchanged at growing intervals (files/disk-full-retry.ts).
            if ((e as { code?: unknown }).code === ErrorCode.DiskFull && this.seen.get(path) === seen) {
              seen.retryMs = nextDiskFullRetryMs(seen.retryMs);
              seen.retryAt = performance.now() + seen.retryMs;
            }
          })
          .finally(() => this.loading.delete(path)),
      );
    }
    if (immediate) await Promise.all(started);
  }
}

/** A file's size and mtime; "gone" when it vanished since it was found. */
function fileStamp(path: string): string {
  try {
    const s = statSync(path);
    return `${s.size}:${s.mtimeMs}`;
  } catch {
    return "gone";
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Whether anything (even a dangling link) is at `path`: those are reported, not silently ignored. */
function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
