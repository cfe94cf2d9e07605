// pino: JSON lines by default, one readable line per event only when stdout is a terminal.
import { type Logger, pino } from "pino";
import type { LogLevel } from "../config/schema.js";
import { prettyStream } from "./pretty.js";

export function createLogger(
  level: LogLevel,
  opts: { pretty?: boolean; destination?: NodeJS.WritableStream } = {},
): Logger {
  const pretty = opts.pretty ?? process.stdout.isTTY === true;
  const base = { level, base: { pid: process.pid } };
  if (pretty) return pino(base, prettyStream(opts.destination ?? process.stdout, opts.destination === undefined && process.stdout.isTTY === true));
  return opts.destination ? pino(base, opts.destination) : pino(base);
}
