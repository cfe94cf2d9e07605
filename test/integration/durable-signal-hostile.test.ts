// A source that offers the durable signal (PROTOCOL.md, message 5b) and then misbehaves: the target
// admits the package (its live instance placed) and stores nothing before `durable`. What it holds
// for such a peer (the package, the placement, the agent's claim) must be released by
// --migration-timeout, and no frame but one `durable` after the package may make it store.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { hex } from "../../src/hash/bytes.js";
import { buildOutgoingPackage } from "../../src/migration/outgoing.js";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { EXAMPLES, startTestNode, stopAllNodes, type TestNode } from "../helpers/node.js";
import { RoguePeer } from "../helpers/rogue.js";
import { waitUntil } from "../helpers/wait.js";

const rogues: RoguePeer[] = [];
afterEach(async () => {
  await Promise.all(rogues.splice(0).map((r) => r.stop()));
  await stopAllNodes();
});

const heartbeat = join(EXAMPLES, "heartbeat.wasm");
const P2P = { listen: "/ip4/127.0.0.1/tcp/0", "accept-migrations": "any", "tick-interval": "10ms", "checkpoint-interval": "0", "migration-retry-delay": "10ms", "migration-timeout": "2s", "peer-refresh": "0" };

const addr = (t: TestNode): string => t.node.migration!.addresses()[0]!;

async function rogue(): Promise<RoguePeer> {
  const r = await RoguePeer.start();
  rogues.push(r);
  return r;
}

/** Heartbeat's package as its node would send it (the agent paused first), and a target B. */
async function recordedAndTarget(): Promise<{ pkg: Uint8Array; b: TestNode }> {
  const a = await startTestNode(P2P);
  const b = await startTestNode(P2P);
  await a.node.addAgent({ wasmPath: heartbeat });
  await a.waitFor<TickEvent>("tick", (e) => e.tick >= 3n);
  await a.node.scheduler.pause("heartbeat", "recorded");
  const lease = a.node.store.lease("heartbeat")!;
  const pkg = buildOutgoingPackage(a.node.store, { agentId: "heartbeat", epoch: lease.epoch, checkpointHash: hex(a.node.store.head("heartbeat")!.hash), haveWasm: false, baseHash: null });
  return { pkg, b };
}

/** Nothing of heartbeat on B: no rows, no instance, no claim, no scheduled agent. */
function nothingHeld(b: TestNode): void {
  expect(b.node.store.lease("heartbeat")).toBeUndefined();
  expect(b.node.store.head("heartbeat")).toBeUndefined();
  expect(b.node.pool.has("heartbeat")).toBe(false);
  expect(b.node.scheduler.has("heartbeat")).toBe(false);
  expect(b.node.migration!.receiving.has("heartbeat")).toBe(false);
}

describe("a source that offers the durable signal and misbehaves", () => {
  it("an agent being received is listed on the target as receiving, with its source, epoch and since, and counted in status, until the reception ends", async () => {
    const { pkg, b } = await recordedAndTarget();
    const r = await rogue();
    let listed: Record<string, unknown> | undefined;
    let status: Record<string, unknown> | undefined;
    let metrics = "";
    await r.sendSignalled(addr(b), pkg, "none", {
      resultTimeoutMs: 10_000,
      onAdmitting: async () => {
        await waitUntil(() => b.node.pool.has("heartbeat"), { what: "heartbeat admitted and placed on B" });
        listed = b.node.agentsJson().find((a) => a.id === "heartbeat");
        status = b.node.status();
        metrics = await b.node.metrics.render();
      },
    });
    // It was in no view: `igord agents` on B did not list it, GET /v1/agents/heartbeat said 404.
    expect(listed).toMatchObject({ id: "heartbeat", status: "receiving", source: r.peerId, epoch: expect.stringMatching(/^\(\d+,\d+\)$/) as unknown });
    expect(typeof listed?.since).toBe("string");
    expect((status?.agents as Record<string, number>).receiving).toBe(1);
    expect(metrics).toMatch(/igord_agents\{state="receiving"\} 1/);
    await waitUntil(() => !b.node.migration!.receiving.has("heartbeat"), { what: "B dropped the admitted package", timeoutMs: 8_000 });
    expect(b.node.agentsJson().find((a) => a.id === "heartbeat")).toBeUndefined();
    expect((b.node.status().agents as Record<string, number>).receiving).toBeUndefined();
  });

  it("a package never followed by `durable` is held admitted (placed, never ticked, nothing stored) for at most --migration-timeout, then dropped; the same package with `durable` is then taken", async () => {
    const { pkg, b } = await recordedAndTarget();
    const r = await rogue();
    let admittedAt = 0;
    const reply = await r.sendSignalled(addr(b), pkg, "none", {
      resultTimeoutMs: 10_000,
      onAdmitting: async () => {
        await waitUntil(() => b.node.pool.has("heartbeat"), { what: "heartbeat admitted and placed on B" });
        admittedAt = Date.now();
        // Admitted and placed, waiting for `durable`: not stored, not scheduled, no tick.
        expect(b.node.store.lease("heartbeat")).toBeUndefined();
        expect(b.node.scheduler.has("heartbeat")).toBe(false);
        expect(b.node.migration!.receiving.has("heartbeat")).toBe(true);
      },
    });
    // The wait ends at the target's --migration-timeout (2 s), not the rogue's patience (10 s).
    expect(reply === null || reply.ok === false).toBe(true);
    await waitUntil(() => !b.node.pool.has("heartbeat") && !b.node.migration!.receiving.has("heartbeat"), { what: "B dropped the admitted package", timeoutMs: 8_000 });
    const droppedAfter = Date.now() - admittedAt;
    expect(droppedAfter).toBeLessThan(6_000);
    expect(b.logs.events("migration_refused").map((l) => l.code)).toEqual(["MIGRATION_TIMEOUT"]);
    nothingHeld(b);
    expect(b.logs.events("tick", "heartbeat")).toHaveLength(0);
    const again = await r.sendSignalled(addr(b), pkg, "durable");
    expect(again).toMatchObject({ stage: "result", ok: true, offerSignal: true });
    await b.waitFor<TickEvent>("tick", (e) => e.agentId === "heartbeat");
  });

  it("a frame other than `durable` after the package is refused MIGRATION_FRAME_INVALID and nothing is stored", async () => {
    const { pkg, b } = await recordedAndTarget();
    const reply = await (await rogue()).sendSignalled(addr(b), pkg, "other");
    expect(reply).toMatchObject({ stage: "result", ok: false, code: "MIGRATION_FRAME_INVALID", offerSignal: true });
    await waitUntil(() => !b.node.pool.has("heartbeat"), { what: "the placement unloaded" });
    nothingHeld(b);
  });

  it("`durable` sent before the package is not a package: refused, nothing stored", async () => {
    const { pkg, b } = await recordedAndTarget();
    const reply = await (await rogue()).sendSignalled(addr(b), pkg, "early");
    expect(reply?.ok).toBe(false);
    await waitUntil(() => !b.node.pool.has("heartbeat"), { what: "the placement unloaded" });
    nothingHeld(b);
  });

  it("`durable` sent twice stores the agent once; the second is no offer, and the stream ends without harm", async () => {
    const { pkg, b } = await recordedAndTarget();
    const reply = await (await rogue()).sendSignalled(addr(b), pkg, "twice");
    expect(reply).toMatchObject({ stage: "result", ok: true, offerSignal: true });
    await b.waitFor<TickEvent>("tick", (e) => e.agentId === "heartbeat");
    expect(b.logs.events("migration_received")).toHaveLength(1);
    expect(b.logs.events("migration_refused")).toHaveLength(0);
    expect(b.node.store.lease("heartbeat")?.state).toBe("ACTIVE_OWNER");
  });
});
