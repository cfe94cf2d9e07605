// Reading an agent's outbox through the control API page by page, as a consumer does
// (GET /v1/agents/:id/outbox?after=TICK with the last tick it read): every stored message arrives
// once, whatever the page boundary, and no page holds more than the page bounds.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { MAX_OUTBOX_PAGE_BYTES } from "../../src/node/control-views.js";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { startTestNode, stopAllNodes, type TestNode } from "../helpers/node.js";
import { CAPS, watAgent, writeWat } from "../helpers/wat.js";

afterEach(stopAllNodes);

interface Page {
  messages: { tick: string; index: number; base64: string }[];
}

async function page(t: TestNode, agentId: string, after: string | null): Promise<Page> {
  const { host, port } = t.node.controlAddress!;
  const token = readFileSync(join(t.config.dataDir, "control.token"), "utf8").trim();
  const res = await fetch(`http://${host}:${port}/v1/agents/${agentId}/outbox${after === null ? "" : `?after=${after}`}`, { headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as Page;
}

/** Every page from the start, each asked after the last tick the one before ended with. */
async function readAll(t: TestNode, agentId: string): Promise<{ keys: string[]; pages: Page[] }> {
  const keys: string[] = [];
  const pages: Page[] = [];
  let after: string | null = null;
  for (;;) {
    const p = await page(t, agentId, after);
    if (p.messages.length === 0) return { keys, pages };
    pages.push(p);
    for (const m of p.messages) keys.push(`${m.tick}:${m.index}`);
    after = p.messages.at(-1)!.tick;
  }
}

function emitter(perTick: number, bytes: number): string {
  return watAgent({
    imports: '(import "igor" "emit" (func $emit (param i32 i32) (result i32)))',
    onTick: `(local.set $i (i32.const 0)) (block $done (loop $next (br_if $done (i32.ge_u (local.get $i) (i32.const ${perTick}))) (drop (call $emit (i32.const 1024) (i32.const ${bytes}))) (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $next)))`,
  }).replace('(func (export "agent_tick") (result i32)', '(func (export "agent_tick") (result i32) (local $i i32)');
}

async function runUntil(t: TestNode, agentId: string, wat: string, tick: bigint): Promise<string[]> {
  await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "wasm"), agentId, wat, CAPS("emit")) });
  await t.waitFor<TickEvent>("tick", (e) => e.agentId === agentId && e.tick >= tick, 20_000);
  await t.node.scheduler.pause(agentId, "test");
  return t.node.store.outbox(agentId, -1n, 1_000_000).map((m) => `${m.tick}:${m.index}`);
}

describe("the outbox read page by page", () => {
  it("a consumer paging with after=<last tick read> gets every message once when ticks emit several (a page never ends inside a tick)", async () => {
    const t = await startTestNode({ control: "127.0.0.1:0", "tick-interval": "2ms", "checkpoint-interval": "10ms", "verify-interval": "0", "outbox-retention": "0" });
    // Three messages a tick: a 1,000-message page would end after the first message of tick 334.
    const stored = await runUntil(t, "triple", emitter(3, 8), 400n);
    expect(stored.length).toBeGreaterThan(1_000);
    const { keys } = await readAll(t, "triple");
    expect(keys).toEqual(stored);
  });

  it("a tick that emits more messages than a page holds arrives whole", async () => {
    const t = await startTestNode({ control: "127.0.0.1:0", "tick-interval": "20ms", "checkpoint-interval": "40ms", "verify-interval": "0", "outbox-retention": "0" });
    const stored = await runUntil(t, "burst", emitter(1_500, 4), 3n);
    const { keys } = await readAll(t, "burst");
    expect(keys).toEqual(stored);
  });

  it("pages are bounded by MAX_OUTBOX_PAGE_BYTES of messages (whole ticks, at least one)", async () => {
    const t = await startTestNode({ control: "127.0.0.1:0", "tick-interval": "2ms", "checkpoint-interval": "10ms", "verify-interval": "0", "outbox-retention": "0" });
    // 60,000 bytes a tick (the most one memory page holds past the agent's state): 1,000 of them
    // would be a 60 MB page, several times that as JSON.
    const size = 60_000;
    const stored = await runUntil(t, "large", emitter(1, size), BigInt(Math.ceil((2 * MAX_OUTBOX_PAGE_BYTES) / size) + 5));
    const { keys, pages } = await readAll(t, "large");
    expect(keys).toEqual(stored);
    expect(pages.length).toBeGreaterThan(1);
    for (const p of pages) expect(p.messages.reduce((n, m) => n + Buffer.from(m.base64, "base64").byteLength, 0)).toBeLessThanOrEqual(MAX_OUTBOX_PAGE_BYTES);
  });
});
