// The temp dirs a kit's nodes live in, removed when their nodes have stopped, and when the test
// process ends without its teardown.
import { rmSync } from "node:fs";
import { onRunnerExit } from "./runner-exit.js";

/**
 * How often a removal tries again when the dir changed under it (ENOTEMPTY): a node killed a moment
 * ago, or one stopping as its test process ends, may still have written a file into it.
 */
const REMOVE_RETRIES = 3;

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true, maxRetries: REMOVE_RETRIES });
}

export class TempDirs {
  private readonly dirs = new Set<string>();

  constructor() {
    onRunnerExit("remove-dirs", () => this.removeAll());
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
