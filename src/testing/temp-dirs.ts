// The temp dirs a kit's nodes live in, removed when their nodes have stopped, and when the test
// process ends without its teardown.
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { onRunnerExit } from "./runner-exit.js";

/**
 * A kit dir's name: its prefix, the pid of the test process that made it, and mkdtemp's six
 * characters. A process killed with SIGKILL cannot remove its in-process nodes' dirs; the next
 * process that loads the kit removes the dirs of processes that are gone (`sweepOrphanDirs`).
 */
const KIT_DIR = /^igord-[a-z0-9-]*?-pid(\d+)-[A-Za-z0-9]{6}$/;

/** A temp dir named for this process (`KIT_DIR`). */
export function tempDir(prefix = "igord-test-"): string {
  return mkdtempSync(join(tmpdir(), `${prefix}pid${process.pid}-`));
}

/** Whether a process with this pid runs (EPERM: it does, as another user). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Removes the kit dirs in the temp dir whose process is gone. */
export function sweepOrphanDirs(root = tmpdir()): void {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(KIT_DIR.exec(name)?.[1] ?? 0);
    if (pid > 0 && pid !== process.pid && !running(pid)) removeDir(join(root, name));
  }
}

/**
 * How often a removal tries again when the dir changed under it (ENOTEMPTY): a node killed a moment
 * ago, or one stopping as its test process ends, may still have written a file into it.
 */
const REMOVE_RETRIES = 3;

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true, maxRetries: REMOVE_RETRIES });
}

/** Whether this process swept the temp dir already (once is enough: its own dirs are its own). */
let swept = false;

export class TempDirs {
  private readonly dirs = new Set<string>();

  constructor() {
    onRunnerExit("remove-dirs", () => this.removeAll());
    if (!swept) sweepOrphanDirs();
    swept = true;
  }

  add(dir: string): void {
    this.dirs.add(dir);
  }

  remove(dir: string): void {
    removeDir(dir);
    this.dirs.delete(dir);
  }

  /** Removes every dir but those in `keep` (nodes still starting: their start removes them). */
  removeAll(keep: ReadonlySet<string> = new Set()): void {
    for (const d of this.dirs) if (!keep.has(d)) this.remove(d);
  }
}
