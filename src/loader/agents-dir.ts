// Watches the agents directory: every .wasm present at start is loaded at once; a file dropped in
// later is loaded once its size and mtime have held still for one scan (so a half-copied file is not
// read). Files directly in the directory and `<dir>/<name>/agent.wasm` are agents; links are followed
// the same way at both levels. Only regular files are ever read: a FIFO, a directory named *.wasm or a
// dangling link is skipped and reported once. A file that fails to load is reported once and retried
// only when it or the manifest beside it changes, or, when it met a full disk, unchanged at growing
// intervals. Loads run side by side and a scan never waits for one: a module that hangs
// while loading (bounded by the tick timeout) holds up no other file.
import { type Dirent, existsSync, lstatSync, readdirSync, type Stats, statSync } from "node:fs";
import { join } from "node:path";
import { ErrorCode, IgordError } from "../errors.js";
import { nextDiskFullRetryMs } from "../files/disk-full-retry.js";
import { describeProblem, statRegularFile } from "../files/regular-file.js";
import { findManifest } from "../manifest/manifest.js";

/** Poll period; a new file starts within two periods plus its load time. */
export const AGENTS_DIR_SCAN_MS = 500;
/**
 * Files already loaded (or refused) whose size and mtime one scan reads again at most, in turn: new
 * files, files still settling and full-disk retries are read every scan. Every file read every
 * 500 ms cost an idle daemon 63 ms of main thread a scan at 2,000 files and ~300 ms at 10,000
 * (four to five stat calls a file); a change to a loaded file is now seen within
 * ceil(files / this) scans (2 s at 2,000 files, 10 s at 10,000).
 */
export const MAX_FILES_RECHECKED_PER_SCAN = 500;

/** An agent file the listing found, with what the listing already knows of it. */
interface Listed {
  path: string;
  /** Its stat when the listing made one (a link or a nested agent.wasm); a plain file is known regular from the directory entry alone. */
  stat: Stats | null;
  /** The manifest beside it, when the listing could tell from the directory's names without a stat; undefined to look it up. */
  manifest?: string | null;
}

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
  private list(): Listed[] {
    if (!existsSync(this.dir)) return [];
    const entries = this.entries();
    const names = new Set(entries.map((e) => e.name));
    const candidates: { path: string; plain: boolean; manifest?: string | null }[] = [];
    // join(dir, name) for a plain name, without join's normalising of each path (most of a scan's time at thousands of files).
    const prefix = join(this.dir, "x").slice(0, -1);
    const shared = names.has("agent.manifest.json") ? `${prefix}agent.manifest.json` : null;
    for (const entry of entries) {
      const name = entry.name;
      if (name.endsWith(".wasm")) {
        // A plain file's manifest is found among the names listed: no lookup of its own.
        const own = `${name.slice(0, -".wasm".length)}.manifest.json`;
        candidates.push({ path: prefix + name, plain: entry.isFile(), manifest: names.has(own) ? prefix + own : shared });
        continue;
      }
      if (entry.isFile()) continue; // a manifest, or anything else that is no agent
      // `<dir>/<name>/agent.wasm`, through a link to a directory too; anything else is not an agent.
      const path = join(this.dir, name);
      if (!entry.isDirectory() && !(entry.isSymbolicLink() && isDirectory(path))) continue;
      const nested = join(path, "agent.wasm");
      if (exists(nested)) candidates.push({ path: nested, plain: false });
    }
    const out: Listed[] = [];
    const present = new Set(candidates.map((c) => c.path));
    for (const c of candidates) {
      // A directory entry that is a plain file is one: only links and nested files need a stat.
      const checked = c.plain ? { stat: null, problem: null } : statRegularFile(c.path);
      if (checked.problem === null) {
        this.skipped.delete(c.path);
        out.push({ path: c.path, stat: checked.stat, ...(c.manifest !== undefined ? { manifest: c.manifest } : {}) });
        continue;
      }
      const reason = describeProblem(checked.problem);
      if (this.skipped.get(c.path) !== reason) {
        this.skipped.set(c.path, reason);
        this.onSkip(c.path, reason);
      }
    }
    for (const path of this.skipped.keys()) if (!present.has(path)) this.skipped.delete(path);
    const byPath = new Map(out.map((l) => [l.path, l]));
    return [...byPath.keys()].sort().map((path) => byPath.get(path) as Listed);
  }

  /**
   * What a load of the agent at `path` reads, as of now: the .wasm's size and mtime, and those of the
   * manifest beside it (or that there is none). A manifest copied in after its .wasm is a change, so
   * a load it would have let through is tried again (and one written in turn with its .wasm settles
   * with it).
   */
  private signature(l: Listed): string | null {
    try {
      const s = l.stat ?? statSync(l.path);
      const manifest = l.manifest !== undefined ? l.manifest : findManifest(l.path);
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

  /** Where the next scan's turn of rechecks starts in the listing (sorted by path). */
  private cursor = 0;

  /** Whether the file at index `i` of a listing of `n` is in this scan's turn of rechecks (MAX_FILES_RECHECKED_PER_SCAN of them, going round). */
  private nextTurn(n: number): (i: number) => boolean {
    const from = this.cursor % n;
    const to = from + MAX_FILES_RECHECKED_PER_SCAN;
    this.cursor = to % n;
    return (i) => (i >= from && i < to) || i < to - n;
  }

  /** Starts the loads this scan finds due; `immediate` (the initial scan) also waits for them. */
  private async scan(immediate: boolean): Promise<void> {
    const started: Promise<void>[] = [];
    const present = this.list();
    // A path whose file is gone is forgotten (a deploy that drops versioned builds and removes the
    // old ones would leave one entry per file ever dropped); a file put back there is a new one.
    const listed = new Set(present.map((l) => l.path));
    for (const path of this.seen.keys()) if (!listed.has(path)) this.seen.delete(path);
    // The handled files whose turn it is to be read again (all of them at start, or when few).
    const turn = immediate || present.length <= MAX_FILES_RECHECKED_PER_SCAN ? null : this.nextTurn(present.length);
    for (const [i, l] of present.entries()) {
      const path = l.path;
      if (this.loading.has(path)) continue;
      const prev = this.seen.get(path);
      const retryDue = prev?.retryAt !== undefined && performance.now() >= prev.retryAt;
      if (turn && prev?.handled === true && !retryDue && !turn(i)) continue;
      const sig = this.signature(l);
      if (sig === null) continue;
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
