// Watches the agents directory: every .wasm present at start is loaded at once; a file dropped in
// later is loaded once its size and mtime have held still for one scan (so a half-copied file is not
// read). Files directly in the directory and `<dir>/<name>/agent.wasm` are agents. A file that fails
// to load is reported once and retried only when it changes.
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

/** Poll period; a new file starts within two periods plus its load time. */
export const AGENTS_DIR_SCAN_MS = 500;

interface Seen {
  signature: string;
  handled: boolean;
}

export type LoadFn = (wasmPath: string) => Promise<void>;

export class AgentsDirWatcher {
  private readonly seen = new Map<string, Seen>();
  private timer: NodeJS.Timeout | null = null;
  private scanning = false;

  constructor(
    private readonly dir: string,
    private readonly load: LoadFn,
  ) {}

  listWasm(): string[] {
    if (!existsSync(this.dir)) return [];
    const out: string[] = [];
    for (const entry of readdirSync(this.dir, { withFileTypes: true })) {
      if (entry.isFile() && entry.name.endsWith(".wasm")) out.push(join(this.dir, entry.name));
      else if (entry.isDirectory()) {
        const nested = join(this.dir, entry.name, "agent.wasm");
        if (existsSync(nested)) out.push(nested);
      }
    }
    return out.sort();
  }

  private signature(path: string): string | null {
    try {
      const s = statSync(path);
      return `${s.size}:${s.mtimeMs}`;
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
      await this.scan(false);
      if (this.timer) this.timer = setTimeout(tick, AGENTS_DIR_SCAN_MS);
    };
    this.timer = setTimeout(tick, AGENTS_DIR_SCAN_MS);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private async scan(immediate: boolean): Promise<void> {
    if (this.scanning) return;
    this.scanning = true;
    try {
      for (const path of this.listWasm()) {
        const sig = this.signature(path);
        if (sig === null) continue;
        const prev = this.seen.get(path);
        if (prev && prev.signature === sig && prev.handled) continue;
        if (!immediate && (!prev || prev.signature !== sig)) {
          this.seen.set(path, { signature: sig, handled: false }); // wait one scan for the file to settle
          continue;
        }
        this.seen.set(path, { signature: sig, handled: true });
        try {
          await this.load(path);
        } catch {
          // Reported by the loader; retried only when the file changes.
        }
      }
    } finally {
      this.scanning = false;
    }
  }
}
