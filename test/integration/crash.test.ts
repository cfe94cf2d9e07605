// Crash safety: SIGKILL a real daemon at random moments while its agents tick and checkpoint. After
// every kill the database reopens, every agent's history is one unbroken signed chain with no gap or
// duplicate, and the restarted daemon resumes each agent exactly from its last committed checkpoint.
// IGORD_CRASH_KILLS raises the number of kills (the soak run uses 50).
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { verifyChain } from "../../src/checkpoint/verify-chain.js";
import { DB_FILE, SqliteStore } from "../../src/store/sqlite-store.js";
import { AS_FIXTURES, EXAMPLES, tempDir } from "../helpers/node.js";
import { killAll, startDaemon } from "../helpers/process.js";

afterEach(killAll);

const KILLS = Number(process.env.IGORD_CRASH_KILLS ?? 6);
const AGENTS = ["heartbeat", "survivor", "fastpath"];

function storedHeads(dataDir: string): Map<string, bigint> {
  const store = SqliteStore.open(join(dataDir, DB_FILE), { readonly: true });
  try {
    const heads = new Map<string, bigint>();
    for (const row of store.listAgents()) {
      const history = [...store.history(row.agentId)];
      const report = verifyChain(history.map((c) => ({ name: `${row.agentId}#${c.seq}`, bytes: c.blob })));
      expect(report.reasons, row.agentId).toEqual([]);
      // seq is contiguous from 1: no gap, no duplicate.
      expect(history.map((c) => c.seq)).toEqual(history.map((_, i) => BigInt(i + 1)));
      // Receipts are contiguous and their costs add up to the budget spent up to the last receipt.
      const receipts = store.receipts(row.agentId);
      for (let i = 1; i < receipts.length; i++) expect(receipts[i]?.tickStart).toBe((receipts[i - 1]?.tickEnd ?? 0n) + 1n);
      if (receipts.length > 0) {
        expect(receipts.reduce((s, r) => s + r.cost, 0n)).toBe((history[0]?.budget ?? 0n) - (receipts.at(-1)?.budgetAfter ?? 0n));
      }
      heads.set(row.agentId, history.at(-1)?.tick ?? -1n);
    }
    return heads;
  } finally {
    store.close();
  }
}

describe("crash safety", () => {
  // Acceptance 15: SIGKILL at random moments → the database reopens, each agent resumes from its last committed checkpoint, no gap or duplicate.
  it(`survives ${KILLS} SIGKILLs at random moments with every history intact`, { timeout: 60_000 + KILLS * 5000 }, async () => {
    const root = tempDir();
    const agentsDir = join(root, "agents");
    mkdirSync(agentsDir);
    for (const a of AGENTS) {
      copyFileSync(join(EXAMPLES, `${a}.wasm`), join(agentsDir, `${a}.wasm`));
      copyFileSync(join(EXAMPLES, `${a}.manifest.json`), join(agentsDir, `${a}.manifest.json`));
    }
    const dataDir = join(root, "data");
    const args = [
      "--agents-dir", agentsDir, "--data-dir", dataDir, "--control", "off",
      "--tick-interval", "5ms", "--fast-tick-interval", "1ms", "--checkpoint-interval", "10ms", "--receipt-interval", "30ms", "--sync", "full",
    ];
    let heads = new Map<string, bigint>();
    for (let kill = 0; kill < KILLS; kill++) {
      const d = startDaemon(args);
      // Each restart resumes every agent from its last committed checkpoint.
      for (const a of AGENTS) {
        const started = await d.waitFor((l) => l.event === "agent_started" && l.agent === a);
        if (heads.has(a)) expect(BigInt(String(started.tick)), `${a} after kill ${kill}`).toBe(heads.get(a));
      }
      // Let a random number of checkpoint rounds commit, then kill mid-flight.
      const rounds = 1 + Math.floor(Math.random() * 6);
      let seen = 0;
      await d.waitFor((l) => l.event === "checkpoint_saved" && l.reason === "periodic" && ++seen >= rounds * AGENTS.length);
      d.child.kill("SIGKILL");
      await d.exit;
      heads = storedHeads(dataDir);
      expect([...heads.keys()].sort()).toEqual([...AGENTS].sort());
    }
    // Ticks really advanced across the kills.
    expect(heads.get("fastpath")).toBeGreaterThan(0n);
  });
});

describe("the outbox across crashes", () => {
  it("after SIGKILLs the outbox holds exactly one message for every checkpointed tick and none beyond the history", { timeout: 60_000 }, async () => {
    const root = tempDir();
    const agentsDir = join(root, "agents");
    mkdirSync(agentsDir);
    copyFileSync(join(AS_FIXTURES, "emitter.wasm"), join(agentsDir, "emitter.wasm"));
    writeFileSync(join(agentsDir, "emitter.manifest.json"), JSON.stringify({ capabilities: { emit: { version: 1 } } }));
    const dataDir = join(root, "data");
    const args = ["--agents-dir", agentsDir, "--data-dir", dataDir, "--control", "off", "--tick-interval", "2ms", "--checkpoint-interval", "40ms", "--sync", "full", "--log-level", "debug"];
    let head = -1n;
    for (let kill = 0; kill < 3; kill++) {
      const d = startDaemon(args);
      const started = await d.waitFor((l) => l.event === "agent_started" && l.agent === "emitter");
      if (head >= 0n) expect(BigInt(String(started.tick))).toBe(head);
      // Killed between checkpoints: ticks ran (and emitted) after the last one committed.
      const rounds = 2 + Math.floor(Math.random() * 3);
      let seen = 0;
      const last = await d.waitFor((l) => l.event === "checkpoint_saved" && ++seen >= rounds);
      await d.waitFor((l) => l.event === "tick" && l.agent === "emitter" && BigInt(String(l.tick)) > BigInt(String(last.tick)) + 3n);
      d.child.kill("SIGKILL");
      await d.exit;
      const store = SqliteStore.open(join(dataDir, DB_FILE), { readonly: true });
      try {
        head = store.head("emitter")?.tick ?? -1n;
        const messages = store.outbox("emitter", -1n, 1_000_000).map((m) => [m.tick, new TextDecoder().decode(m.payload)] as const);
        expect(head, `after kill ${kill}`).toBeGreaterThan(0n);
        // No message from a tick the history does not contain, none missing, none twice.
        expect(messages.map(([t]) => t), `after kill ${kill}`).toEqual(Array.from({ length: Number(head) }, (_, i) => BigInt(i + 1)));
        expect(messages.every(([t, text]) => text === `tick ${t}`)).toBe(true);
      } finally {
        store.close();
      }
    }
  });
});
