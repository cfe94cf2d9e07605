// Committed agent fixtures built by other toolchains (C against wasi-libc, Rust), run on test nodes:
// placed with a manifest, then waited on until replay verified their ticks or they checkpointed.
import { copyFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { CheckpointEvent, DivergenceEvent } from "../../src/scheduler/scheduler.js";
import type { TestNode } from "./node.js";

/** Copies the fixture at `wasm` into the node's dir as NAME.wasm, with a manifest granting `caps` (and `limits`); returns its path. */
export function placeFixture(t: TestNode, wasm: string, name: string, caps: string[], limits?: Record<string, number>): string {
  const path = join(t.dir, `${name}.wasm`);
  copyFileSync(wasm, path);
  const manifest = { capabilities: Object.fromEntries(caps.map((c) => [c, { version: 1 }])), ...(limits ? { resource_limits: limits } : {}) };
  writeFileSync(join(t.dir, `${name}.manifest.json`), JSON.stringify(manifest));
  return path;
}

/** Waits until `n` of the agent's ticks verified by replay on this node; a divergence fails at once. */
export async function verifiedTicks(t: TestNode, id: string, n: number): Promise<void> {
  let seen = 0;
  const diverged = t.waitFor<DivergenceEvent>("divergence", (e) => e.agentId === id, 15_000).then((e) => {
    throw new Error(`${id} diverged in replay: ${e.code} at tick ${e.tick}: ${e.message}`);
  });
  diverged.catch(() => undefined);
  await Promise.race([t.waitFor<{ agentId: string; ticks: bigint[] }>("verified", (e) => e.agentId === id && (seen += e.ticks.length) >= n, 15_000), diverged]);
}

/** Waits for two written checkpoints after tick 0: the window a migration replays then starts past genesis. */
export async function checkpointedTwice(t: TestNode, id: string): Promise<void> {
  let written = 0;
  await t.waitFor<CheckpointEvent>("checkpoint", (e) => e.agentId === id && e.outcome === "written" && e.tick > 0n && ++written >= 2, 10_000);
}

/** The little-endian u64 at `at` in a state. */
export const u64At = (state: Uint8Array, at: number): bigint => new DataView(state.buffer, state.byteOffset).getBigUint64(at, true);
