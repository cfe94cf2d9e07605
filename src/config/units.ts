// Parsing of duration and address values shared by flags, env vars and the config file.

const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "10ms" | "1.5s" | "2m" | "1h" | "0" → milliseconds. */
export function parseDurationMs(text: string): number {
  const t = text.trim();
  if (t === "0") return 0;
  const m = DURATION_RE.exec(t);
  if (!m) throw new Error(`"${text}" is not a duration (use e.g. 10ms, 1s, 1.5s, 2m)`);
  const ms = Number(m[1]) * (UNIT_MS[m[2] ?? "ms"] ?? 1);
  if (!Number.isFinite(ms)) throw new Error(`"${text}" is too large`);
  return Math.round(ms);
}

export function formatDurationMs(ms: number): string {
  if (ms === 0) return "0";
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

const SIZE_RE = /^(\d+)(B|KiB|MiB|GiB)$/;
const UNIT_BYTES: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

/** "64MiB" | "512KiB" | "4096B" → bytes; null when the text is not a size. */
export function parseSizeBytes(text: string): number | null {
  const m = SIZE_RE.exec(text.trim());
  if (!m) return null;
  // A whole number of bytes a Number counts exactly (8 PiB): 1e35 bytes was taken.
  const bytes = Number(m[1]) * (UNIT_BYTES[m[2] ?? "B"] ?? 1);
  return Number.isSafeInteger(bytes) ? bytes : null;
}

export interface HostPort {
  host: string;
  port: number;
}

/** "127.0.0.1:7420" | "localhost:0" | "[::1]:7420" → { host, port }. */
export function parseHostPort(text: string): HostPort {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text.trim());
  if (!m) throw new Error(`"${text}" is not host:port (e.g. 127.0.0.1:7420) or "off"`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`port ${port} is above 65535`);
  return { host: m[1] ?? m[2] ?? "", port };
}
