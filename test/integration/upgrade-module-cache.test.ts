// A dev loop (`npm run dev`, --upgrade-agents-dir: every save an upgrade) of a module with some MiB
// of debug info: only the newest version runs, and the node's compiled-module cache must not keep
// the earlier ones until it counts MODULE_CACHE_SIZE of them (256 saves of a 64 MiB module is 16 GiB).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { MODULE_CACHE_BYTES } from "../../src/loader/prepare.js";
import { upgradeAgent } from "../../src/node/code-upgrade.js";
import { startTestNode, stopAllNodes } from "../helpers/node.js";
import { wat2wasm, watAgent, withCustomSection } from "../helpers/wat.js";

afterEach(stopAllNodes);

const DEBUG_INFO_BYTES = 4 * 1024 * 1024;

describe("the compiled-module cache under a dev loop of upgrades", () => {
  it("holds at most MODULE_CACHE_BYTES of modules, though every save of a big module is a new one", async () => {
    const t = await startTestNode({ "tick-interval": "50ms", "checkpoint-interval": "0" });
    const base = await wat2wasm(watAgent());
    mkdirSync(join(t.dir, "builds"));
    const debugInfo = new Uint8Array(DEBUG_INFO_BYTES);
    const build = (n: number): string => {
      debugInfo[0] = n; // another build: other bytes, another hash
      const path = join(t.dir, "builds", `dev-${n}.wasm`);
      writeFileSync(path, withCustomSection(base, ".debug_info", debugInfo));
      return path;
    };
    await t.node.addAgent({ wasmPath: build(0), agentId: "dev" });
    // Enough saves that the versions together are well above the bound.
    const saves = Math.ceil((2 * MODULE_CACHE_BYTES) / DEBUG_INFO_BYTES);
    for (let n = 1; n <= saves; n++) await upgradeAgent(t.node, "dev", build(n));
    expect(t.node.scheduler.view("dev")?.status).toBe("running");
    expect(t.node.cache.bytes).toBeLessThanOrEqual(MODULE_CACHE_BYTES);
    expect(t.node.cache.size).toBeLessThan(saves);
  }, 60_000);
});
