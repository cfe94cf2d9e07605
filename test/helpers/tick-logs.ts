import { HostcallId } from "../../src/hostcalls/registry.js";
import type { TickEvent } from "../../src/scheduler/scheduler.js";

/** The agent's log lines of a tick (its log_emit payloads), in order. */
export function logLines(e: TickEvent): string[] {
  return e.events.filter((x) => x.id === HostcallId.log_emit).map((x) => new TextDecoder().decode(x.payload));
}
