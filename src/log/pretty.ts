// Terminal log lines: one line per event, `time level [agent #tick] message key=value ...`.
// JSON lines (the default when stdout is not a terminal) are unchanged; this is only for people.
import { Writable } from "node:stream";
import { hasUnprintable, printable } from "./printable.js";

const LEVELS: Record<number, string> = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };
const COLORS: Record<number, string> = { 10: "\x1b[90m", 20: "\x1b[36m", 30: "\x1b[32m", 40: "\x1b[33m", 50: "\x1b[31m", 60: "\x1b[35m" };
const RESET = "\x1b[0m";
const DIM = "\x1b[2m";
/** Fields shown in the line's head or not worth a terminal's width. */
const HEAD = new Set(["level", "time", "pid", "hostname", "msg", "agent", "tick", "did", "component"]);

function clock(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2): string => String(n).padStart(w, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

function value(v: unknown): string {
  if (typeof v === "string") return /^[^\s"=]+$/.test(v) && !hasUnprintable(v) ? v : printable(JSON.stringify(v));
  if (v !== null && typeof v === "object" && "message" in v && typeof (v as { message: unknown }).message === "string") {
    return printable(JSON.stringify((v as { message: string }).message));
  }
  return printable(JSON.stringify(v) ?? String(v));
}

/** Formats one pino JSON record as one terminal line (no trailing newline). */
export function formatLine(rec: Record<string, unknown>, color = false): string {
  const level = typeof rec.level === "number" ? rec.level : 30;
  const name = (LEVELS[level] ?? String(level)).padEnd(5);
  const time = typeof rec.time === "number" ? clock(rec.time) : "";
  const who = typeof rec.agent === "string" ? `${rec.agent}${rec.tick !== undefined ? ` #${String(rec.tick)}` : ""}` : typeof rec.component === "string" ? rec.component : null;
  const fields = Object.entries(rec)
    .filter(([k, v]) => !HEAD.has(k) && v !== undefined)
    .map(([k, v]) => `${k}=${value(v)}`)
    .join(" ");
  const msg = typeof rec.msg === "string" ? printable(rec.msg.replace(/\s*\n\s*/g, " ")) : "";
  const head = color ? `${DIM}${time}${RESET} ${COLORS[level] ?? ""}${name}${RESET}` : `${time} ${name}`;
  const tail = fields ? (color ? ` ${DIM}${fields}${RESET}` : ` ${fields}`) : "";
  return `${head}${who ? ` [${printable(who)}]` : ""} ${msg}${tail}`;
}

/** A pino destination that writes each record as one formatted line to `out`. */
export function prettyStream(out: NodeJS.WritableStream, color: boolean): Writable {
  let partial = "";
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      const lines = (partial + chunk.toString()).split("\n");
      partial = lines.pop() ?? "";
      const text = lines
        .filter((l) => l.trim())
        .map((l) => {
          try {
            return formatLine(JSON.parse(l) as Record<string, unknown>, color);
          } catch {
            return l;
          }
        })
        .join("\n");
      if (text) out.write(`${text}\n`);
      cb();
    },
  });
}
