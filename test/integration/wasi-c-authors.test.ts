// C agents written against wasi-libc the way an author would (test/fixtures/wasi/c/*.c, built by
// scripts/build-c-agents.sh and committed): each runs, replays, migrates and audits, or is refused
// with an error naming what it did.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { ROOT, startTestNode, stopAllNodes, storedHead, type TestNode } from "../helpers/node.js";
import { checkpointedTwice, placeFixture, u64At, verifiedTicks as verified } from "../helpers/fixture-agents.js";
import { igord } from "../helpers/process.js";

afterEach(stopAllNodes);

const FIXTURES = join(ROOT, "test", "fixtures", "wasi");
const FAST = { "tick-interval": "10ms", "checkpoint-interval": "40ms", "verify-interval": "3" };
const P2P = { listen: "/ip4/127.0.0.1/tcp/0", "accept-migrations": "any", "migration-retry-delay": "10ms", "migration-timeout": "5s", "peer-refresh": "0" };

/** Copies fixture c-<name>.wasm into the node's dir with a manifest granting `caps`; returns its path. */
const place = (t: TestNode, name: string, caps: string[]): string => placeFixture(t, join(FIXTURES, `c-${name}.wasm`), name, caps);

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
