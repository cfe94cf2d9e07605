// An author's copy that lands the .wasm first and its manifest a moment later (scp, rsync, a build
// that writes them in turn): the agent's load met no manifest, and its file was retried only when
// the .wasm itself changed, so the manifest that arrived was never read. The manifest beside a
// .wasm is part of what the agents dir watches for it.
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { EXAMPLES, tempDir } from "../helpers/node.js";
import { killAll, startDaemon } from "../helpers/process.js";

afterEach(killAll);

describe("a manifest copied into the agents dir after its .wasm", () => {
  it("is read: the load the missing manifest refused (its imports not granted) is tried again once the manifest arrives, and the agent runs", async () => {
    const root = tempDir();
    const agents = join(root, "agents");
    mkdirSync(agents);
    const d = startDaemon(["--listen", "off", "--control", "off", "--data-dir", join(root, "data"), "--agents-dir", agents, "--tick-interval", "50ms"]);
    await d.waitFor((l) => l.event === "agents_loaded");
    copyFileSync(join(EXAMPLES, "heartbeat.wasm"), join(agents, "heartbeat.wasm"));
    const refused = await d.waitFor((l) => l.event === "agent_load_failed");
    expect(String(refused.err)).toMatch(/clock|capabilit|import/i);
    copyFileSync(join(EXAMPLES, "heartbeat.manifest.json"), join(agents, "heartbeat.manifest.json"));
    await d.waitFor((l) => l.event === "agent_log" && l.agent === "heartbeat", 10_000);
  }, 30_000);
});
