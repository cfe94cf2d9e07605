#!/usr/bin/env node
// Checkpoints persisted per second: 1 KiB state, signed v0x04 + node-signed receipt, group-committed
// across agents, per --sync mode. Used by scripts/bench.mjs; runnable alone:
//   node scripts/bench-checkpoints.mjs --sync=full --agents=1000 --seconds=3
import "../dist/shim/promise-with-resolvers.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { SqliteStore } from "../dist/store/sqlite-store.js";
import { Checkpointer } from "../dist/scheduler/checkpointer.js";
import { generateKey } from "../dist/identity/keys.js";
import { didFromPublicKey } from "../dist/identity/did.js";
import { SignerPool } from "../dist/identity/signer-pool.js";
import { SIGNER_THREADS } from "../dist/node/node.js";

/** A bench that stops making progress reports it instead of hanging. */
const STALL_MS = 60_000;

export async function checkpointRate({ sync, agents = 1000, seconds = 3 }) {
  const stall = setTimeout(() => {
    console.error(`checkpoint bench (--sync ${sync}) made no progress for ${STALL_MS / 1000}s`);
    process.exit(2);
  }, STALL_MS + seconds * 1000);
  const dir = mkdtempSync(join(tmpdir(), "igord-ckpt-bench-"));
  const store = SqliteStore.open(join(dir, "igord.db"), { sync });
  const signer = new SignerPool(SIGNER_THREADS);
  const cp = new Checkpointer(store, store.nodeKey(), 60_000, signer);
  const wasm = randomBytes(64);
  const wasmHash = (await import("node:crypto")).createHash("sha256").update(wasm).digest("hex");
  const subjects = [];
  for (let i = 0; i < agents; i++) {
    const identity = generateKey();
    const s = { agentId: `a${i}`, tick: 0n, budget: 10n ** 12n, price: 1000n, state: randomBytes(1024), wasmHash, identity };
    cp.genesis(s, { agentId: s.agentId, did: didFromPublicKey(identity.publicKey), wasmHash, wasmBytes: wasm, manifest: "{}", identity });
    subjects.push(s);
  }
  let written = 0;
  const deadline = performance.now() + seconds * 1000;
  const t0 = performance.now();
  while (performance.now() < deadline) {
    const round = subjects.map((s) => {
      s.tick += 1n;
      s.budget -= 1n;
      cp.addCost(s.agentId, 1n);
      return cp.checkpoint(s, "periodic", "active", null);
    });
    await Promise.all(round);
    written += round.length;
  }
  const rate = written / ((performance.now() - t0) / 1000);
  await signer.close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
  clearTimeout(stall);
  return rate;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, "").split("=")));
  for (const sync of (args.get("sync") ?? "full,normal").split(",")) {
    const rate = await checkpointRate({ sync, agents: Number(args.get("agents") ?? 1000), seconds: Number(args.get("seconds") ?? 3) });
    console.log(`--sync ${sync}: ${Math.round(rate).toLocaleString("en-US")} checkpoints/s`);
  }
}
