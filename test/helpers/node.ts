// In-process test nodes come from the test kit (src/testing, published as igord/testing); the paths
// of this repo's example agents and fixtures, and helpers built on them, are the repo's own.
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { ROOT, startTestNode, tempDir } from "../../src/testing/node.js";

export { LogCapture, type LogLine, ROOT, startTestNode, stopAllNodes, storedHead, tempDir, type TestNode } from "../../src/testing/node.js";
export const EXAMPLES = join(ROOT, "agents");
export const AS_FIXTURES = join(ROOT, "test", "fixtures", "build");

/** A temp dir with an agents dir holding these example agents (each with its manifest). */
export function agentsDirWith(names: readonly string[]): { dir: string; agents: string; data: string } {
  const dir = tempDir();
  const agents = join(dir, "agents");
  mkdirSync(agents);
  for (const name of names) {
    copyFileSync(join(EXAMPLES, `${name}.wasm`), join(agents, `${name}.wasm`));
    copyFileSync(join(EXAMPLES, `${name}.manifest.json`), join(agents, `${name}.manifest.json`));
  }
  return { dir, agents, data: join(dir, "data") };
}

/** The data dir of a stopped node that ran heartbeat to tick `ticks` with a short checkpoint interval. */
export async function dataDirWithHeartbeat(ticks = 3n): Promise<string> {
  const t = await startTestNode({ "tick-interval": "20ms", "checkpoint-interval": "50ms" });
  await t.node.addAgent({ wasmPath: join(EXAMPLES, "heartbeat.wasm") });
  await t.waitFor("tick", (e: { tick: bigint }) => e.tick >= ticks);
  await t.stop();
  return t.config.dataDir;
}
