// igord export --out naming a file: refused, naming it, and the file left as it was (it failed with a
// bare ENOTDIR from the directory listing).
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { EXAMPLES, startTestNode, stopAllNodes } from "../helpers/node.js";
import { igord } from "../helpers/process.js";

afterEach(stopAllNodes);

describe("igord export --out", () => {
  it("naming a file is refused CONFIG_INVALID, and the file is left as it was", async () => {
    const t = await startTestNode({ "tick-interval": "20ms" });
    await t.node.addAgent({ wasmPath: join(EXAMPLES, "heartbeat.wasm") });
    await t.waitFor<TickEvent>("tick", (e) => e.tick >= 2n);
    await t.stop();
    const file = join(t.dir, "not-a-dir");
    writeFileSync(file, "keep me");
    const r = igord(["export", "heartbeat", "--out", file, "--data-dir", t.config.dataDir]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`${file} exists and is not a directory`);
    expect(r.stderr).toContain("CONFIG_INVALID");
    expect(readFileSync(file, "utf8")).toBe("keep me");
  });
});
