// C agents written against wasi-libc the way an author would (test/fixtures/wasi/c/*.c, built by
// scripts/build-c-agents.sh and committed): each runs, replays, migrates and audits, or is refused
// with an error naming what it did.
import { copyFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { DivergenceEvent, TickEvent } from "../../src/scheduler/scheduler.js";
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
});
