// Agent files that failed to load, so `igord agents` and `igord status` show them (not only the log).
// Bounded: a directory full of broken files costs at most MAX_LOAD_FAILURES entries. A path is
// forgotten when it later loads, or once its file is gone.
import { existsSync } from "node:fs";
import { resolve } from "node:path";

/** Failed paths remembered at most; the oldest report goes first. */
export const MAX_LOAD_FAILURES = 256;

export interface LoadFailure {
  /** Absolute path of the module. */
  path: string;
  /** The agent id it was loaded as (given, or derived from the file name). */
  agentId: string;
  code: string;
  message: string;
  at: number;
}

export class LoadFailures {
  private readonly byPath = new Map<string, LoadFailure>();

  record(path: string, agentId: string, e: unknown): void {
    const key = resolve(path);
    const code = typeof (e as { code?: unknown }).code === "string" ? (e as { code: string }).code : "INTERNAL";
    this.byPath.delete(key); // re-inserted last: the newest report
    this.byPath.set(key, { path: key, agentId, code, message: (e as Error).message, at: Date.now() });
    for (const oldest of this.byPath.keys()) {
      if (this.byPath.size <= MAX_LOAD_FAILURES) break;
      this.byPath.delete(oldest);
    }
  }

  clear(path: string): void {
    this.byPath.delete(resolve(path));
  }

  /** Current failures, oldest first; files removed since are forgotten here. */
  list(): LoadFailure[] {
    for (const path of [...this.byPath.keys()]) if (!existsSync(path)) this.byPath.delete(path);
    return [...this.byPath.values()];
  }

  get size(): number {
    return this.list().length;
  }
}
