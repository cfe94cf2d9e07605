// What an agent's ticks say to the world: its log lines (log_emit) are logged as the tick commits;
// its emitted messages (emit) wait for the checkpoint that covers the tick, are written to the outbox
// in that checkpoint's transaction, and are logged once it is durable.
import type { LogEntry } from "../eventlog/tick-log.js";
import { HostcallId } from "../hostcalls/registry.js";
import type { OutboxBatch } from "../store/sqlite-store.js";
import type { AgentRuntime } from "./agent-runtime.js";

const textDecoder = new TextDecoder();

/**
 * Lines of one tick printed at most (its log_emit lines; its published messages): the rest are
 * counted in one line that says so. Each printed line costs the main thread a JSON line (a tick may
 * record MAX_TICK_EVENT_ENTRIES of them: ~0.6 s of the main thread, every tick); the tick's event
 * log still holds them all (igord inspect).
 */
export const MAX_PRINTED_LINES_PER_TICK = 1_000;
/**
 * Bytes of one tick's lines printed at most (of its log_emit lines; of its published messages): the
 * line that crosses it is printed cut, the rest counted. Printing is on the main thread, which every
 * agent shares, and costs by the byte (pino escapes each control character as six): a tick may record
 * MAX_TICK_EVENT_BYTES, and 16 MiB of NUL bytes took ~0.9 s to print, every tick. The event log and
 * the outbox keep every byte.
 */
export const MAX_PRINTED_BYTES_PER_TICK = 64 * 1024;

type Printed = "agent_log" | "agent_output";

/** One tick's lines of one kind as they are printed, within MAX_PRINTED_LINES_PER_TICK and MAX_PRINTED_BYTES_PER_TICK. */
class TickPrinter {
  private lines = 0;
  private bytes = 0;
  private skipped = 0;
  private skippedBytes = 0;

  constructor(
    private readonly a: AgentRuntime,
    private readonly tick: bigint,
    private readonly of: Printed,
  ) {}

  print(m: Uint8Array): void {
    if (this.lines >= MAX_PRINTED_LINES_PER_TICK || (this.bytes >= MAX_PRINTED_BYTES_PER_TICK && m.length > 0)) {
      this.skipped++;
      this.skippedBytes += m.length;
      return;
    }
    const room = MAX_PRINTED_BYTES_PER_TICK - this.bytes;
    const cut = m.length > room;
    const shown = cut ? m.subarray(0, room) : m;
    this.lines++;
    this.bytes += shown.length;
    this.skippedBytes += m.length - shown.length;
    const fields: Record<string, unknown> = { event: this.of, tick: String(this.tick) };
    // A published message always says its size; a log line only when it is cut.
    if (this.of === "agent_output" || cut) fields.bytes = m.length;
    if (cut) fields.cut = true;
    this.a.logger.info(fields, textDecoder.decode(shown));
  }

  /** One line for what was not printed (none when everything was). */
  done(): void {
    if (this.skipped === 0 && this.skippedBytes === 0) return;
    const what = this.of === "agent_log" ? "log lines" : "published messages";
    this.a.logger.warn(
      {
        event: "agent_lines_not_printed",
        tick: String(this.tick),
        of: this.of,
        count: this.skipped,
        bytes: this.skippedBytes,
        limit: MAX_PRINTED_LINES_PER_TICK,
        byteLimit: MAX_PRINTED_BYTES_PER_TICK,
      },
      `${this.skipped} more ${what} of tick ${this.tick} not printed, ${this.skippedBytes} bytes with the rest of a cut one (${MAX_PRINTED_LINES_PER_TICK} lines and ${MAX_PRINTED_BYTES_PER_TICK} bytes a tick are); its event log holds them (igord inspect)`,
    );
  }
}

/**
 * The tick committed in memory: its emitted messages (the emit side effect) wait for the checkpoint
 * that covers the tick and are written to the outbox in its transaction, so the outbox never holds
 * a message from an execution the history does not contain (a crash re-runs those ticks instead).
 */
export function queueOutputs(a: AgentRuntime, tick: bigint, events: readonly LogEntry[]): void {
  const messages = events.filter((e) => e.id === HostcallId.emit && e.result === 0).map((e) => e.payload);
  if (messages.length > 0) a.pendingOutbox.push({ tick, epochMajor: a.lease?.epoch.major ?? 0n, messages });
}

export function logPublished(a: AgentRuntime, outbox: readonly OutboxBatch[]): void {
  for (const b of outbox) {
    const printer = new TickPrinter(a, b.tick, "agent_output");
    for (const m of b.messages) printer.print(m);
    printer.done();
  }
}

export function emitAgentLogs(a: AgentRuntime, tick: bigint, events: readonly LogEntry[]): void {
  let printer: TickPrinter | null = null;
  for (const e of events) {
    if (e.id === HostcallId.log_emit && e.result === 0 && e.payload.length > 0) (printer ??= new TickPrinter(a, tick, "agent_log")).print(e.payload);
  }
  printer?.done();
}
