// C agents written against wasi-libc the way an author would (test/fixtures/wasi/c/*.c, built by
// scripts/build-c-agents.sh and committed): each runs, replays, migrates and audits, or is refused
// with an error naming what it did.
import { copyFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { CheckpointEvent, DivergenceEvent, TickEvent } from "../../src/scheduler/scheduler.js";
import { ROOT, startTestNode, stopAllNodes, storedHead, type TestNode } from "../helpers/node.js";
import { igord } from "../helpers/process.js";

afterEach(stopAllNodes);

const FIXTURES = join(ROOT, "test", "fixtures", "wasi");
const FAST = { "tick-interval": "10ms", "checkpoint-interval": "40ms", "verify-interval": "3" };
const P2P = { listen: "/ip4/127.0.0.1/tcp/0", "accept-migrations": "any", "migration-retry-delay": "10ms", "migration-timeout": "5s", "peer-refresh": "0" };

/** Copies fixture c-<name>.wasm into the node's dir with a manifest granting `caps`; returns its path. */
function place(t: TestNode, name: string, caps: string[]): string {
  const path = join(t.dir, `${name}.wasm`);
  copyFileSync(join(FIXTURES, `c-${name}.wasm`), path);
  writeFileSync(join(t.dir, `${name}.manifest.json`), JSON.stringify({ capabilities: Object.fromEntries(caps.map((c) => [c, { version: 1 }])) }));
  return path;
}

/** Waits until `n` of the agent's ticks verified by replay on this node; a divergence fails at once. */
async function verified(t: TestNode, id: string, n: number): Promise<void> {
  let seen = 0;
  const diverged = t.waitFor<DivergenceEvent>("divergence", (e) => e.agentId === id, 15_000).then((e) => {
    throw new Error(`${id} diverged in replay: ${e.code} at tick ${e.tick}: ${e.message}`);
  });
  diverged.catch(() => undefined);
  await Promise.race([t.waitFor<{ agentId: string; ticks: bigint[] }>("verified", (e) => e.agentId === id && (seen += e.ticks.length) >= n, 15_000), diverged]);
}

/** Waits for two written checkpoints after tick 0: the window a migration replays then starts past genesis. */
async function checkpointedTwice(t: TestNode, id: string): Promise<void> {
  let written = 0;
  await t.waitFor<CheckpointEvent>("checkpoint", (e) => e.agentId === id && e.outcome === "written" && e.tick > 0n && ++written >= 2, 10_000);
}

const u64At = (state: Uint8Array, at: number): bigint => new DataView(state.buffer, state.byteOffset).getBigUint64(at, true);

describe("C agents on wasi-libc, as authors write them", () => {
  it("an agent that salts each checkpoint with getentropy() gets zeros there, live as in replay: it verifies, migrates and audits VALID", async () => {
    const a = await startTestNode({ ...FAST, ...P2P }, { start: false });
    const b = await startTestNode({ ...FAST, ...P2P, "checkpoint-interval": "0" });
    const path = place(a, "checkpoint-nonce", ["log"]);
    await a.node.start();
    await a.node.addAgent({ wasmPath: path });
    await verified(a, "checkpoint-nonce", 3);
    expect(a.logs.events("replay_divergence")).toEqual([]);

    const r = await a.node.migrate("checkpoint-nonce", [b.node.migration!.addresses()[0]!]);
    expect(r.outcome, JSON.stringify(r.error)).toBe("done");
    const moved = await b.waitFor<TickEvent>("tick", (e) => e.agentId === "checkpoint-nonce");
    await verified(b, "checkpoint-nonce", 3);
    expect(b.logs.events("replay_divergence")).toEqual([]);
    await b.stop();
    const head = storedHead(b.config.dataDir, "checkpoint-nonce")!;
    expect(head.tick).toBeGreaterThan(moved.tick);
    expect([u64At(head.state, 0), u64At(head.state, 8)]).toEqual([head.tick, 0n]);
    const audit = igord(["verify", "--replay", "--agent", "checkpoint-nonce", "--data-dir", b.config.dataDir]);
    expect(audit.stdout, audit.stdout + audit.stderr).toMatch(/replay: VALID/);
    expect(audit.status).toBe(0);
  });

  // AUTHORING.md "C: wasi-libc": getentropy() is one recorded random_get per call; arc4random() is not.
  it("dice rolled with getentropy() in the tick replay and migrate; rolled with arc4random() (seeded once, in memory) they diverge and the target refuses them naming rand_bytes", async () => {
    const a = await startTestNode({ ...FAST, ...P2P }, { start: false });
    const b = await startTestNode({ ...FAST, ...P2P, "checkpoint-interval": "0" });
    const paths = ["dice-getentropy", "dice-arc4random"].map((n) => place(a, n, ["rand", "log"]));
    await a.node.start();
    for (const wasmPath of paths) await a.node.addAgent({ wasmPath });
    const target = b.node.migration!.addresses()[0]!;

    await checkpointedTwice(a, "dice-getentropy");
    await verified(a, "dice-getentropy", 3);
    const good = await a.node.migrate("dice-getentropy", [target]);
    expect(good.outcome, JSON.stringify(good.error)).toBe("done");
    await verified(b, "dice-getentropy", 3);

    await checkpointedTwice(a, "dice-arc4random");
    const bad = await a.node.migrate("dice-arc4random", [target]);
    expect(bad.outcome).toBe("reverted");
    expect(bad.error?.code).toBe("REPLAY_HOSTCALL_MISMATCH");
    expect(bad.error?.message).toMatch(/the agent called rand_bytes, the log recorded log_emit/);
    const after = storedHead(a.config.dataDir, "dice-arc4random")!.tick;
    await a.waitFor<TickEvent>("tick", (e) => e.agentId === "dice-arc4random" && e.tick > after);
    expect(a.logs.events("replay_divergence", "dice-arc4random").length).toBeGreaterThan(0);
    expect(a.logs.events("replay_divergence", "dice-getentropy")).toEqual([]);
    expect(b.logs.events("replay_divergence")).toEqual([]);

    await b.stop();
    const audit = igord(["verify", "--replay", "--agent", "dice-getentropy", "--data-dir", b.config.dataDir]);
    expect(audit.stdout, audit.stdout + audit.stderr).toMatch(/replay: VALID/);
  });
});
