// What a guest call last wrote (its log_emit lines, env.trace, WASI stdout/stderr), kept aside for
// the call's failure to quote: a runtime prints its reason there and then traps with a bare
// `unreachable` (Rust's panic message, "memory allocation of N bytes failed", a C assert, a no_std
// panic handler's log_emit). Bounded: the last MAX_FAILURE_OUTPUT_BYTES; nothing here is recorded.

/** How many bytes of a guest call's last output its failure (a trap, a non-zero proc_exit) quotes. */
export const MAX_FAILURE_OUTPUT_BYTES = 1024;

const decoder = new TextDecoder();
const NEWLINE = new Uint8Array([0x0a]);

/** The last MAX_FAILURE_OUTPUT_BYTES written during the current guest call. */
export class OutputTail {
  private readonly buf = new Uint8Array(MAX_FAILURE_OUTPUT_BYTES);
  private len = 0;
  /** Bytes written before the kept ones were dropped. */
  private cut = false;

  clear(): void {
    this.len = 0;
    this.cut = false;
  }

  markCut(): void {
    this.cut = true;
  }

  add(bytes: Uint8Array): void {
    const cap = this.buf.length;
    if (bytes.length >= cap) {
      this.buf.set(bytes.subarray(bytes.length - cap));
      if (this.len > 0 || bytes.length > cap) this.cut = true;
      this.len = cap;
      return;
    }
    const keep = Math.min(this.len, cap - bytes.length);
    if (keep < this.len) {
      this.buf.copyWithin(0, this.len - keep, this.len);
      this.cut = true;
    }
    this.buf.set(bytes, keep);
    this.len = keep + bytes.length;
  }

  /** One whole line (a log_emit, a trace): `end` its last bytes (at most the tail's size), of `length` in all. */
  addLine(end: Uint8Array, length: number): void {
    if (length > end.length) this.markCut();
    this.add(end);
    this.add(NEWLINE);
  }

  /** The kept output as one line (its lines joined with " | "), or null when there is none. */
  text(): string | null {
    const lines = decoder
      .decode(this.buf.subarray(0, this.len))
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l !== "");
    if (lines.length === 0) return null;
    return `${this.cut ? "…" : ""}${lines.join(" | ")}`;
  }
}
