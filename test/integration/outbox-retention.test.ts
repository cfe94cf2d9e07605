// The outbox (the messages agents emit) is bounded per agent by --outbox-retention: an agent that
// emits every tick keeps at most that many bytes of messages stored, the newest, oldest ticks dropped
// whole as messages are written. Real node, real SQLite file, real WASM.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode, isIgordError } from "../../src/errors.js";
import { loadConfig } from "../../src/config/load.js";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { startTestNode, stopAllNodes, type TestNode } from "../helpers/node.js";
import { CAPS, watAgent, writeWat } from "../helpers/wat.js";

afterEach(async () => {
  await stopAllNodes();
});

const MESSAGE_BYTES = 4096;
// Each tick emits one 4 KiB message (bytes of memory at 1024).
const EMITTER = watAgent({
  imports: '(import "igor" "emit" (func $emit (param i32 i32) (result i32)))',
  onTick: `(drop (call $emit (i32.const 1024) (i32.const ${MESSAGE_BYTES})))`,
});

function stored(t: TestNode, agentId: string): { ticks: bigint[]; bytes: number } {
  const rows = t.node.store.outbox(agentId, -1n, 1_000_000);
  return { ticks: rows.map((r) => r.tick), bytes: rows.reduce((n, r) => n + r.payload.byteLength, 0) };
}

describe("--outbox-retention", () => {
  it("an agent emitting every tick keeps at most that many bytes of messages: the newest, whole ticks", async () => {
    const t = await startTestNode({ "tick-interval": "2ms", "checkpoint-interval": "10ms", "verify-interval": "0", "outbox-retention": "64KiB" });
    await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "wasm"), "chatty", EMITTER, CAPS("emit")) });
    // 100 ticks emit 400 KiB.
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "chatty" && e.tick >= 100n, 20_000);
    await t.node.scheduler.pause("chatty", "test");
    const head = t.node.store.head("chatty")!.tick;
    const { ticks, bytes } = stored(t, "chatty");
    expect(bytes).toBeLessThanOrEqual(64 * 1024);
    expect(bytes).toBeGreaterThan(64 * 1024 - 2 * MESSAGE_BYTES);
    // The newest are kept, without a gap.
    expect(ticks.at(-1)).toBe(head);
    expect(ticks).toEqual(ticks.map((_, i) => head - BigInt(ticks.length - 1 - i)));
  });

  it("an outbox answer says from which tick every message is still kept, so a consumer behind it sees its gap: dropped ticks are not taken for ticks that emitted nothing", async () => {
    const t = await startTestNode({ control: "127.0.0.1:0", "tick-interval": "2ms", "checkpoint-interval": "10ms", "verify-interval": "0", "outbox-retention": "64KiB" });
    const outbox = async (after: string): Promise<{ messages: { tick: string }[]; keptFromTick: string }> => {
      const { host, port } = t.node.controlAddress!;
      const token = readFileSync(join(t.config.dataDir, "control.token"), "utf8").trim();
      const res = await fetch(`http://${host}:${port}/v1/agents/chatty/outbox?after=${after}`, { headers: { authorization: `Bearer ${token}` } });
      expect(res.status).toBe(200);
      return (await res.json()) as { messages: { tick: string }[]; keptFromTick: string };
    };
    await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "wasm"), "chatty", EMITTER, CAPS("emit")) });
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "chatty" && e.tick >= 2n, 20_000);
    // Nothing dropped yet: every tick's messages are kept.
    expect((await outbox("0")).keptFromTick).toBe("0");
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "chatty" && e.tick >= 100n, 20_000);
    await t.node.scheduler.pause("chatty", "test");
    const { ticks } = stored(t, "chatty");
    const oldest = ticks[0]!;
    expect(oldest).toBeGreaterThan(1n);
    // A consumer that read through tick 1 gets the oldest kept tick's messages first, and is told
    // ticks 2.. up to it were dropped (not empty: this agent emits every tick).
    const behind = await outbox("1");
    expect(behind.messages[0]!.tick).toBe(oldest.toString());
    expect(behind.keptFromTick).toBe(oldest.toString());
    await t.stop();
  });

  it("0 keeps every message", async () => {
    const t = await startTestNode({ "tick-interval": "2ms", "checkpoint-interval": "10ms", "verify-interval": "0", "outbox-retention": "0" });
    await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "wasm"), "chatty", EMITTER, CAPS("emit")) });
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "chatty" && e.tick >= 40n, 20_000);
    await t.node.scheduler.pause("chatty", "test");
    const head = t.node.store.head("chatty")!.tick;
    expect(stored(t, "chatty").ticks).toEqual(Array.from({ length: Number(head) }, (_, i) => BigInt(i + 1)));
  });

  it("defaults to 64 MiB, and a value that is not a size or 0 is a config error that names it", () => {
    expect(loadConfig({ flags: {}, env: {} }).outboxRetentionBytes).toBe(64 * 1024 * 1024);
    for (const bad of ["-1", "lots", "100"]) {
      let err: unknown;
      try {
        loadConfig({ flags: { "outbox-retention": bad }, env: {} });
      } catch (e) {
        err = e;
      }
      expect(isIgordError(err) && err.code === ErrorCode.ConfigInvalid, bad).toBe(true);
      expect((err as Error).message).toMatch(/outbox-retention/);
    }
  });
});
