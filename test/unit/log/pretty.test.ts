import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../../src/log/logger.js";
import { formatLine } from "../../../src/log/pretty.js";

describe("pretty logs", () => {
  it("print one line per event: time, level, [agent #tick], message, then the other fields as key=value", () => {
    const line = formatLine({ level: 30, time: new Date(2026, 10, 29, 15, 4, 5, 6).getTime(), pid: 1, agent: "heartbeat", did: "did:key:z6Mk", tick: "12", msg: "checkpoint saved", event: "checkpoint_saved", budget: "999", reason: "periodic" });
    expect(line).toBe("15:04:05.006 INFO  [heartbeat #12] checkpoint saved event=checkpoint_saved budget=999 reason=periodic");
  });

  it("name the component when there is no agent, quote values with spaces, and keep multi-line messages on one line", () => {
    const line = formatLine({ level: 50, time: 0, component: "pool", msg: "worker thread died\nhard", event: "worker_lost", err: "out of memory", details: { phase: "agent_init" } });
    expect(line.split("\n")).toHaveLength(1);
    expect(line).toContain('ERROR [pool] worker thread died hard event=worker_lost err="out of memory" details={"phase":"agent_init"}');
  });

  it("a logger in pretty mode writes exactly one line per record", () => {
    const out: string[] = [];
    const sink = new Writable({ write: (c: Buffer, _e, cb) => (out.push(c.toString()), cb()) });
    const log = createLogger("info", { pretty: true, destination: sink }).child({ agent: "a1" });
    log.info({ event: "tick", tick: "3" }, "tick");
    log.warn({ event: "lease_state", state: "RECOVERY_REQUIRED" }, "lease expired");
    const lines = out.join("").trimEnd().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}\[a1 #3\] tick event=tick$/);
    expect(lines[1]).toMatch(/WARN {2}\[a1\] lease expired event=lease_state state=RECOVERY_REQUIRED$/);
  });

  it("show an agent's control characters escaped, never sent to the terminal: escape sequences, BEL, a carriage return that would forge a line, bidi overrides", () => {
    // What an agent's log_emit can carry: OSC 52 (set the clipboard), clear screen, cursor up, a CR and a forged line.
    const evil = "\x1b]52;c;ZXZpbA==\x07\x1b[2J\x1b[1A\rINFO  checkpoint ok \u009b31m \u202e";
    const line = formatLine({ level: 30, time: 0, agent: "shouty", tick: "2", msg: evil, event: "agent_log", text: evil, err: { message: evil } });
    // eslint-disable-next-line no-control-regex -- looking for them is the point
    expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e]/);
    expect(line).toContain("\\u001b]52;c;ZXZpbA==\\u0007\\u001b[2J\\u001b[1A\\u000dINFO  checkpoint ok \\u009b31m \\u202e");
  });

  it("leave the formatter's own colours alone", () => {
    const line = formatLine({ level: 40, time: 0, component: "pool", msg: "slow" }, true);
    expect(line).toContain("\x1b[33mWARN");
  });
});
