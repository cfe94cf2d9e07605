// The node's offered capability set: one object used by the loader, the registry and (later)
// migration admission. Readers take a snapshot (an immutable set) once per operation, so a change
// made at run time never tears an admission decision in half.
import { EventEmitter } from "node:events";
import { ErrorCode, IgordError } from "../errors.js";
import { IMPLEMENTED_CAPABILITIES } from "./registry.js";

export class NodeCapabilities extends EventEmitter {
  private current: ReadonlySet<string>;

  constructor(initial: readonly string[]) {
    super();
    this.current = NodeCapabilities.validate(initial);
  }

  private static validate(caps: readonly string[]): ReadonlySet<string> {
    const unknown = caps.filter((c) => !(IMPLEMENTED_CAPABILITIES as readonly string[]).includes(c));
    if (unknown.length > 0) {
      throw new IgordError(
        ErrorCode.CapabilityUnknown,
        `this node cannot offer capability ${unknown.map((c) => `"${c}"`).join(", ")} (it implements ${IMPLEMENTED_CAPABILITIES.join(", ")})`,
      );
    }
    return Object.freeze(new Set([...caps].sort()));
  }

  snapshot(): ReadonlySet<string> {
    return this.current;
  }

  list(): string[] {
    return [...this.current];
  }

  /** Replaces the set atomically. Running agents keep what they were granted at load (CM-6). */
  replace(caps: readonly string[]): void {
    const next = NodeCapabilities.validate(caps);
    const prev = this.current;
    this.current = next;
    this.emit("change", next, prev);
  }
}
