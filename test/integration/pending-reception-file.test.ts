// A pending reception (migration/pending-reception.ts) holds its agent's id on the target until its
// source answers: the agent may be retired on the source already, this row its only owner. A .wasm
// of that name in the target's agents dir (found at the restart, or dropped in meanwhile) must not
// create a new agent under that id. Before, the agents-dir scan created one (a fresh identity), the
// flip then failed AGENT_EXISTS at every round, and the status query was answered "receiving" for
// ever: the migrated agent, retired on its source, ran nowhere, and an impostor ran under its name.
// Real nodes, SQLite files, WASM and libp2p on loopback; the crash is a power cut (a backup of the
// target's disk once its pending row was stored).
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { DB_FILE } from "../../src/store/sqlite-store.js";
import { EXAMPLES, startTestNode, stopAllNodes, tempDir, type TestNode } from "../helpers/node.js";
import { waitUntil } from "../helpers/wait.js";
import { failHandoffQuestions } from "../helpers/unreachable-source.js";

afterEach(() => stopAllNodes());

const survivor = join(EXAMPLES, "survivor.wasm");
const P2P = { listen: "/ip4/127.0.0.1/tcp/0", "accept-migrations": "any", "tick-interval": "10ms", "checkpoint-interval": "0", "migration-retry-delay": "10ms", "migration-max-delay": "200ms", "migration-timeout": "3s", "peer-refresh": "0" };
const addressOf = (t: TestNode): string => t.node.migration!.addresses()[0]!;

describe("an agents-dir file named like a pending reception", () => {
  it("is held while the reception is pending: the flip stores the migrated agent, which runs under its own DID, and no other agent is created", async () => {
    const a = await startTestNode(P2P);
    let lost: string | null = null;
    let b: TestNode | null = null;
    b = await startTestNode(P2P, {}, {
      afterPendingStored: () => {
        const dir = tempDir();
        mkdirSync(join(dir, "data"));
        b!.node.store.backupTo(join(dir, "data", DB_FILE));
        lost = dir;
      },
    });
    await a.node.addAgent({ wasmPath: survivor });
    await a.waitFor<TickEvent>("tick", (e) => e.agentId === "survivor" && e.tick >= 2n);
    expect((await a.node.migrate("survivor", [addressOf(b)])).outcome).toBe("done");
    expect(a.node.store.lease("survivor")?.state).toBe("RETIRED");
    const did = a.node.store.agent("survivor")!.did;
    await b.stop();

    // B's disk as a power cut left it (the pending row, not the flip), restarted with survivor.wasm in its agents dir.
    const dir = lost as unknown as string;
    mkdirSync(join(dir, "agents"));
    copyFileSync(survivor, join(dir, "agents", "survivor.wasm"));
    copyFileSync(join(EXAMPLES, "survivor.manifest.json"), join(dir, "agents", "survivor.manifest.json"));
    // Its questions to A fail until its start, the agents-dir scan included, is done (A unreachable meanwhile).
    const reachable = failHandoffQuestions();
    let b2: TestNode;
    try {
      b2 = await startTestNode(P2P, { dir, resumeStored: true, watch: true });
      await waitUntil(() => b2.logs.events("pending_reception_unreachable").length >= 1, { what: "B to ask A about the pending reception" });
      // Held, not created: the id is the pending reception's.
      expect(b2.node.store.agent("survivor")).toBeUndefined();
      expect(b2.logs.events("agent_file_held")).toMatchObject([{ agent: "survivor", code: "MIGRATION_IN_PROGRESS" }]);
    } finally {
      reachable();
    }
    await waitUntil(() => b2.node.store.pendingReception("survivor") === undefined && b2.node.scheduler.view("survivor")?.status === "running", {
      what: "the pending reception flipped and survivor running on B",
    });
    expect(b2.node.store.agent("survivor")?.did).toBe(did);
    expect(b2.logs.events("pending_reception_flip_failed")).toEqual([]);
    const at = b2.node.scheduler.view("survivor")!.tick;
    await b2.waitFor<TickEvent>("tick", (e) => e.agentId === "survivor" && e.tick > at);
  });
});
