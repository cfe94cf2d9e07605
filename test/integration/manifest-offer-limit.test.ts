// A source refuses, before it stops the agent, a migration whose manifest no offer can carry: the
// loader takes manifests up to 256 KiB, an offer carries 128 Ki characters as JSON in its 256 KiB
// control frame. Before, the agent stopped and was handed off, then every target refused the offer.
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { EXAMPLES, startTestNode, stopAllNodes, tempDir, type TestNode } from "../helpers/node.js";

afterEach(stopAllNodes);

const MANIFEST = readFileSync(join(EXAMPLES, "heartbeat.manifest.json"), "utf8");
const P2P = { listen: "/ip4/127.0.0.1/tcp/0", "tick-interval": "10ms", "checkpoint-interval": "0", "migration-retry-delay": "10ms", "migration-timeout": "5s", "peer-refresh": "0" };
const addr = (t: TestNode): string => t.node.migration!.addresses()[0]!;

describe("a manifest over what an offer carries", () => {
  it("a manifest over what an offer carries is refused before the agent stops, naming the manifest; the agent keeps running", async () => {
    const a = await startTestNode(P2P);
    const b = await startTestNode({ ...P2P, "trusted-peer": a.node.migration!.peerId });
    const dir = tempDir();
    copyFileSync(join(EXAMPLES, "heartbeat.wasm"), join(dir, "big.wasm"));
    const manifest = MANIFEST.trim();
    // Valid JSON the loader takes (under its 256 KiB): 150,000 characters, whitespace inside the object.
    writeFileSync(join(dir, "big.manifest.json"), `${manifest.slice(0, -1)}${" ".repeat(150_000 - manifest.length)}}`);
    await a.node.addAgent({ wasmPath: join(dir, "big.wasm") });
    await a.waitFor<TickEvent>("tick", (e) => e.agentId === "big" && e.tick >= 2n);
    let detached = 0;
    const detach = a.node.scheduler.detach.bind(a.node.scheduler);
    a.node.scheduler.detach = (...args) => {
      detached++;
      return detach(...args);
    };
    await expect(a.node.migrate("big", [addr(b)])).rejects.toMatchObject({ code: "MIGRATION_FRAME_TOO_LARGE", message: expect.stringMatching(/agent "big" cannot migrate: its manifest \(150000 characters/) });
    expect(detached).toBe(0);
    expect(a.node.scheduler.view("big")?.status).toBe("running");
    expect(a.node.store.lease("big")?.state).toBe("ACTIVE_OWNER");
  });
});
