// What an agent's ticks say to the world: its log lines (log_emit) are logged as the tick commits;
// its emitted messages (emit) wait for the checkpoint that covers the tick, are written to the outbox
// in that checkpoint's transaction, and are logged once it is durable.
import type { LogEntry } from "../eventlog/tick-log.js";
import { HostcallId } from "../hostcalls/registry.js";
import type { OutboxBatch } from "../store/sqlite-store.js";
import type { AgentRuntime } from "./agent-runtime.js";

const textDecoder = new TextDecoder();

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
    for (const m of b.messages) a.logger.info({ event: "agent_output", tick: String(b.tick), bytes: m.length }, textDecoder.decode(m));
  }
}

export function emitAgentLogs(a: AgentRuntime, tick: bigint, events: readonly LogEntry[]): void {
  for (const e of events) {
    if (e.id === HostcallId.log_emit && e.result === 0 && e.payload.length > 0) {
      a.logger.info({ event: "agent_log", tick: String(tick) }, textDecoder.decode(e.payload));
    }
  }
}
