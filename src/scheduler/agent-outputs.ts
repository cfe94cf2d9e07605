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
    const shown = Math.min(b.messages.length, MAX_PRINTED_LINES_PER_TICK);
    for (let i = 0; i < shown; i++) {
      const m = b.messages[i] as Uint8Array;
      a.logger.info({ event: "agent_output", tick: String(b.tick), bytes: m.length }, textDecoder.decode(m));
    }
    notPrinted(a, b.tick, "agent_output", b.messages.length - shown);
  }
}

export function emitAgentLogs(a: AgentRuntime, tick: bigint, events: readonly LogEntry[]): void {
  let lines = 0;
  for (const e of events) {
    if (e.id === HostcallId.log_emit && e.result === 0 && e.payload.length > 0) {
      if (++lines <= MAX_PRINTED_LINES_PER_TICK) a.logger.info({ event: "agent_log", tick: String(tick) }, textDecoder.decode(e.payload));
    }
  }
  notPrinted(a, tick, "agent_log", lines - MAX_PRINTED_LINES_PER_TICK);
}

/** One line for the `count` lines of a tick past MAX_PRINTED_LINES_PER_TICK (none when there are none). */
function notPrinted(a: AgentRuntime, tick: bigint, of: "agent_log" | "agent_output", count: number): void {
  if (count <= 0) return;
  a.logger.warn(
    { event: "agent_lines_not_printed", tick: String(tick), of, count, limit: MAX_PRINTED_LINES_PER_TICK },
    `${count} more ${of === "agent_log" ? "log lines" : "published messages"} of tick ${tick} not printed (${MAX_PRINTED_LINES_PER_TICK} a tick are); its event log holds them (igord inspect)`,
  );
}
