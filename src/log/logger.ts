// pino: JSON lines by default, pretty output only when stdout is a terminal.
import { type Logger, pino } from "pino";
import pinoPretty from "pino-pretty";
import type { LogLevel } from "../config/schema.js";

export function createLogger(
  level: LogLevel,
  opts: { pretty?: boolean; destination?: NodeJS.WritableStream } = {},
): Logger {
  const pretty = opts.pretty ?? process.stdout.isTTY === true;
  const base = { level, base: { pid: process.pid } };
  if (pretty)
    return pino(
      base,
      pinoPretty({ colorize: true, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname" }),
    );
  return opts.destination ? pino(base, opts.destination) : pino(base);
}
