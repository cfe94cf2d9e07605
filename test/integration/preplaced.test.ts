// An admitted agent's live instance placed ahead of the reception's commit (scheduler/preplaced.ts):
// the resume takes it over only when it was placed with exactly what the stored rows say; anything
// else is unloaded, so the resume places the agent anew as if nothing had been placed ahead.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { parseCheckpoint } from "../../src/checkpoint/codec.js";
import { generateKey } from "../../src/identity/keys.js";
import { prepareAgent } from "../../src/loader/prepare.js";
import { agentSpec } from "../../src/node/node.js";
import { PreplacedAgent } from "../../src/scheduler/preplaced.js";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { EXAMPLES, startTestNode, stopAllNodes } from "../helpers/node.js";

afterEach(stopAllNodes);

describe("a live instance placed ahead of its resume", () => {
  it("is taken over only with the same module, state, budget, price, interrupted flag and key, at most once; otherwise it is unloaded", async () => {
    const t = await startTestNode({ "tick-interval": "10ms" });
    const heartbeat = join(EXAMPLES, "heartbeat.wasm");
    await t.node.addAgent({ wasmPath: heartbeat });
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "heartbeat" && e.tick >= 2n);
    const state = parseCheckpoint(t.node.store.head("heartbeat")!.blob).state;
    const prepared = prepareAgent({ agentId: "copy", wasmPath: heartbeat, offered: t.node.capabilities.snapshot(), cache: t.node.cache });
    const identity = generateKey();
    const spec = agentSpec(prepared, identity);
    const init = { wasmHash: prepared.wasmHash, state, budget: 1000n, price: 1n, interrupted: false, publicKey: identity.publicKey };
    const others = [
      { budget: 999n },
      { price: 2n },
      { interrupted: true },
      { publicKey: generateKey().publicKey },
      { wasmHash: "00".repeat(32) },
      { state: new Uint8Array([...state, 0]) },
    ];
    for (const differs of others) {
      const ahead = PreplacedAgent.place(t.node.pool, spec, init);
      expect(ahead.take({ ...init, ...differs })).toBeUndefined();
      expect(t.node.pool.has("copy")).toBe(false);
    }
    const ahead = PreplacedAgent.place(t.node.pool, spec, init);
    const placed = ahead.take({ ...init, state: new Uint8Array(state) });
    expect(placed).toBeDefined();
    expect(Buffer.from((await placed!).state).equals(Buffer.from(state))).toBe(true);
    // Taken over: neither a second take nor a discard touches it.
    expect(ahead.take(init)).toBeUndefined();
    ahead.discard();
    expect(t.node.pool.has("copy")).toBe(true);
    t.node.pool.unload("copy");
  });
});

describe("an instance placed ahead for an id the pool already holds", () => {
  it("is refused, and discarding it leaves the agent that holds the id running", async () => {
    const t = await startTestNode({ "tick-interval": "10ms" });
    const heartbeat = join(EXAMPLES, "heartbeat.wasm");
    // A local agent holds the id (created while a peer's package for that id was being admitted).
    await t.node.addAgent({ wasmPath: heartbeat });
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "heartbeat" && e.tick >= 2n);
    const prepared = prepareAgent({ agentId: "heartbeat", wasmPath: heartbeat, offered: t.node.capabilities.snapshot(), cache: t.node.cache });
    const identity = generateKey();
    const state = parseCheckpoint(t.node.store.head("heartbeat")!.blob).state;
    const ahead = PreplacedAgent.place(t.node.pool, agentSpec(prepared, identity), { wasmHash: prepared.wasmHash, state, budget: 1n, price: 1n, interrupted: false, publicKey: identity.publicKey });
    // The reception is refused (the id is taken): its placement is discarded.
    ahead.discard();
    expect(t.node.pool.has("heartbeat")).toBe(true);
    const at = t.node.scheduler.view("heartbeat")!.tick;
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "heartbeat" && e.tick >= at + 3n);
    expect(t.node.scheduler.view("heartbeat")?.status).toBe("running");
  });
});

describe("an agent received by migration", () => {
  const P2P = { listen: "/ip4/127.0.0.1/tcp/0", "accept-migrations": "any", "migration-retry-delay": "10ms", "migration-timeout": "5s", "peer-refresh": "0", "tick-interval": "10ms" };

  it("resumes from what admission prepared and verified: its module is not read back from the store nor prepared again, and it runs on", async () => {
    const a = await startTestNode(P2P);
    const b = await startTestNode(P2P);
    await a.node.addAgent({ wasmPath: join(EXAMPLES, "survivor.wasm") });
    await a.waitFor<TickEvent>("tick", (e) => e.agentId === "survivor" && e.tick >= 3n);
    // Count the target's reads of stored modules during the hop (the resume read and prepared it again before).
    const store = b.node.store;
    const read = store.wasm.bind(store);
    let reads = 0;
    store.wasm = (hash: string) => {
      reads++;
      return read(hash);
    };
    const r = await a.node.migrate("survivor", [b.node.migration!.addresses()[0]!]);
    expect(r.outcome).toBe("done");
    expect(reads).toBe(0);
    const at = b.node.scheduler.view("survivor")!.tick;
    await b.waitFor<TickEvent>("tick", (e) => e.agentId === "survivor" && e.tick >= at + 3n);
    // A restart resumes it from the stored rows, module read back and head verified, as always.
    store.wasm = read;
    await b.stop();
    const again = await startTestNode(P2P, { dir: b.dir, resumeStored: true });
    await again.waitFor<TickEvent>("tick", (e) => e.agentId === "survivor" && e.tick >= at + 4n);
  });
});
