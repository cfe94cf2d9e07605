// clock_now (and Date.now in AssemblyScript) is the node's wall clock. After a suspend or a paused VM
// the wall clock is stepped to the time missed while the monotonic clock is not: an agent must read
// the time it is, not the time it was when its worker thread started plus monotonic time since
// (which stays behind by the whole pause, and signs wallet_pay receipts with that time).
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { AS_FIXTURES, ROOT, tempDir } from "../helpers/node.js";
import { killAll, startDaemon } from "../helpers/process.js";

afterEach(killAll);

const JUMP_MS = 3_600_000;

describe("the agent's clock after the wall clock jumps forward", () => {
  it("an agent ticking in a worker started before the wall clock jumped an hour forward reads the new time", async () => {
    const root = tempDir();
    const agents = join(root, "agents");
    mkdirSync(agents);
    copyFileSync(join(AS_FIXTURES, "uses_date.wasm"), join(agents, "dated.wasm"));
    writeFileSync(join(agents, "dated.manifest.json"), JSON.stringify({ capabilities: { clock: { version: 1 }, log: { version: 1 } } }));
    const jumpFile = join(root, "jump");
    const d = startDaemon(
      ["--agents-dir", agents, "--data-dir", join(root, "data"), "--control", "off", "--tick-interval", "50ms", "--hibernate-after", "0", "--lease-duration", "0", "--workers", "1"],
      { IGORD_LISTEN: "off", ...process.env, NODE_OPTIONS: `--require ${join(ROOT, "test", "fixtures", "clock", "suspend.cjs")}`, IGORD_TEST_CLOCK_JUMP_FILE: jumpFile, IGORD_TEST_CLOCK_JUMP_MS: String(JUMP_MS) },
    );
    const nowOf = (l: Record<string, unknown>): number | null => {
      const m = l.event === "agent_log" && /^now (\d+)$/.exec(String(l.msg));
      return m ? Number(m[1]) : null;
    };
    const before = await d.waitFor((l) => nowOf(l) !== null);
    expect(Math.abs(nowOf(before)! - (before.time as number)), "before the jump the agent reads the node's time").toBeLessThan(5_000);
    writeFileSync(jumpFile, "");
    // A line logged after the jump (its time, the daemon's Date.now, is an hour ahead of this process's).
    const after = await d.waitFor((l) => nowOf(l) !== null && (l.time as number) > Date.now() + JUMP_MS / 2);
    expect(nowOf(after)! - (after.time as number), "ms the agent's clock is off the node's after the jump").toBeGreaterThan(-5_000);
    expect(nowOf(after)! - (after.time as number)).toBeLessThan(5_000);
  });
});
