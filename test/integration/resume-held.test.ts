// `igord resume --checkpoint F --wasm W` on a data dir that stores the agent must hold what
// `igord run` and a restart hold: an agent the divergence policy paused, one the operator stopped
// or removed, one that moved away. Before, the command resumed a held agent from its head file
// (stored stopped, running, then stored active at its shutdown: the hold and its reason gone), and
// appended a checkpoint that extends the head, or signed a --budget top-up, before any refusal.
// Real SQLite files, real WASM, the igord binary for the command.
import { cpSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { removeAgent, startAgent, stopAgent } from "../../src/node/agent-lifecycle.js";
import type { AgentView, CheckpointEvent, TickEvent } from "../../src/scheduler/scheduler.js";
import { DB_FILE, SqliteStore } from "../../src/store/sqlite-store.js";
import { EXAMPLES, startTestNode, stopAllNodes, tempDir } from "../helpers/node.js";
import { igord, killAll } from "../helpers/process.js";
import { CAPS, watAgent, writeWat } from "../helpers/wat.js";

afterEach(async () => {
  await stopAllNodes();
  await killAll();
});

const heartbeat = join(EXAMPLES, "heartbeat.wasm");
const FAST = { "tick-interval": "5ms", "checkpoint-interval": "20ms" };

// A hidden input: $hidden is not in the checkpoint, so a replay from the pre-state computes another state.
const NONDETERMINISTIC = watAgent({
  imports: '(import "igor" "clock_now" (func $clock (result i64)))',
  onTick: `(global.set $hidden (i32.add (global.get $hidden) (i32.const 7)))
    (global.set $ticks (i32.add (global.get $ticks) (global.get $hidden)))
    (drop (call $clock))`,
  extra: "(global $hidden (mut i32) (i32.const 0))",
});

/** Everything a refused resume must leave as it was. */
function stored(dataDir: string, agentId: string) {
  const store = SqliteStore.open(join(dataDir, DB_FILE), { readonly: true });
  try {
    const row = store.agent(agentId);
    const head = store.head(agentId);
    return {
      status: row?.status,
      reason: row?.reason,
      head: head ? Buffer.from(head.hash).toString("hex") : null,
      count: store.historyCount(agentId),
      events: store.lineageEvents(agentId).length,
      lease: store.lease(agentId),
    };
  } finally {
    store.close();
  }
}

/** The agent's checkpoint at seq, as a file. */
function checkpointFile(dataDir: string, agentId: string, seq: bigint | "head", file: string): string {
  const store = SqliteStore.open(join(dataDir, DB_FILE), { readonly: true });
  try {
    const row = seq === "head" ? store.head(agentId) : store.checkpointAt(agentId, seq);
    writeFileSync(file, (row as { blob: Uint8Array }).blob);
    return file;
  } finally {
    store.close();
  }
}

const resume = (dataDir: string, checkpoint: string, wasm: string, ...more: string[]) =>
  igord(["resume", "--checkpoint", checkpoint, "--wasm", wasm, "--data-dir", dataDir, "--listen", "off", ...FLAGS, ...more]);
const FLAGS = ["--tick-interval", "5ms"];

describe("igord resume --checkpoint of a held agent", () => {
  it("an agent the divergence policy paused is refused AGENT_STOPPED naming replay_divergence: not run, no top-up signed, its hold kept", async () => {
    const t = await startTestNode({ ...FAST, "verify-interval": "1", "replay-on-divergence": "pause" });
    const wasm = await writeWat(join(t.dir, "wasm"), "nondet", NONDETERMINISTIC, CAPS("clock"));
    await t.node.addAgent({ wasmPath: wasm });
    expect((await t.waitFor<AgentView>("stopped", (v) => v.id === "nondet")).reason).toBe("replay_divergence");
    await t.stop();
    const before = stored(t.config.dataDir, "nondet");
    expect(before).toMatchObject({ status: "stopped", reason: "replay_divergence" });
    const head = checkpointFile(t.config.dataDir, "nondet", "head", join(t.dir, "head.ckpt"));

    for (const more of [[], ["--budget", "5"]]) {
      const r = resume(t.config.dataDir, head, wasm, ...more);
      expect(r.stderr).toContain("AGENT_STOPPED");
      expect(r.stderr).toContain("replay_divergence");
      expect(r.stdout + r.stderr).not.toContain("run_started");
      expect(r.status).toBe(1);
      expect(stored(t.config.dataDir, "nondet")).toEqual(before);
    }
  });

  it("an agent the operator stopped, then removed: a checkpoint that extends its head (a copy of the data dir ran on) is refused AGENT_STOPPED, then AGENT_REMOVED, and never appended", async () => {
    const t = await startTestNode(FAST);
    await t.node.addAgent({ wasmPath: heartbeat });
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "heartbeat" && e.tick >= 3n);
    await stopAgent(t.node, "heartbeat");
    await t.stop();
    const headSeq = BigInt(stored(t.config.dataDir, "heartbeat").count);

    // A copy of the stopped node's data dir, where the operator started the agent: its next checkpoint extends the head.
    const copy = tempDir();
    cpSync(t.dir, copy, { recursive: true });
    const c = await startTestNode(FAST, { dir: copy });
    await startAgent(c.node, "heartbeat");
    await c.waitFor<CheckpointEvent>("checkpoint", (e) => e.agentId === "heartbeat" && e.outcome === "written");
    await c.stop();
    const next = checkpointFile(c.config.dataDir, "heartbeat", headSeq + 1n, join(t.dir, "next.ckpt"));

    const stopped = stored(t.config.dataDir, "heartbeat");
    expect(stopped).toMatchObject({ status: "stopped", reason: "operator_stop" });
    let r = resume(t.config.dataDir, next, heartbeat);
    expect(r.stderr).toContain("AGENT_STOPPED");
    expect(r.status).toBe(1);
    expect(stored(t.config.dataDir, "heartbeat")).toEqual(stopped);

    // The control API's resume (what igord import and igord recover ask a daemon for) holds it too; only igord start runs it.
    const again = await startTestNode(FAST, { dir: t.dir });
    await expect(again.node.resumeAgent("heartbeat")).rejects.toMatchObject({ code: "AGENT_STOPPED" });
    expect(again.node.scheduler.view("heartbeat")).toBeUndefined();
    expect(again.node.quarantined.has("heartbeat")).toBe(false);
    await removeAgent(again.node, "heartbeat");
    await again.stop();
    const removed = stored(t.config.dataDir, "heartbeat");
    expect(removed).toMatchObject({ status: "removed", head: stopped.head, count: stopped.count });
    r = resume(t.config.dataDir, next, heartbeat);
    expect(r.stderr).toContain("AGENT_REMOVED");
    expect(r.status).toBe(1);
    expect(stored(t.config.dataDir, "heartbeat")).toEqual(removed);
  });
});
