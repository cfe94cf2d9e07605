// igord backup: a consistent copy of a live daemon's database, private (0600), never overwriting.
import { copyFileSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { verifyChain } from "../../src/checkpoint/verify-chain.js";
import { SqliteStore } from "../../src/store/sqlite-store.js";
import { EXAMPLES, tempDir } from "../helpers/node.js";
import { igord, killAll, startDaemon } from "../helpers/process.js";

afterEach(killAll);

describe("igord backup", () => {
  it("copies a running daemon's database consistently; the copy verifies, is 0600, and an existing file is never overwritten", async () => {
    const dir = tempDir();
    mkdirSync(join(dir, "agents"));
    for (const f of ["survivor.wasm", "survivor.manifest.json", "heartbeat.wasm", "heartbeat.manifest.json"]) copyFileSync(join(EXAMPLES, f), join(dir, "agents", f));
    const dataDir = join(dir, "data");
    const d = startDaemon(["--agents-dir", join(dir, "agents"), "--data-dir", dataDir, "--control", "off", "--tick-interval", "5ms", "--checkpoint-interval", "20ms"]);
    await d.waitFor((l) => l.event === "checkpoint_saved" && l.agent === "survivor" && Number(l.tick) >= 20);
    // Taken while the daemon writes checkpoints every 20 ms.
    const out = join(dir, "copy.db");
    const r = igord(["backup", out, "--data-dir", dataDir]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/agents:\s+2/);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const copy = SqliteStore.open(out, { readonly: true });
    try {
      for (const id of ["survivor", "heartbeat"]) {
        const history = [...copy.history(id)];
        expect(history.length).toBeGreaterThan(1);
        expect(verifyChain(history.map((c) => ({ name: `${id}#${c.seq}`, bytes: c.blob }))).valid).toBe(true);
      }
    } finally {
      copy.close();
    }
    writeFileSync(join(dir, "taken.db"), "keep me");
    const again = igord(["backup", join(dir, "taken.db"), "--data-dir", dataDir]);
    expect(again.status).toBe(1);
    expect(again.stderr).toContain("already exists");
    d.child.kill("SIGINT");
    expect(await d.exit).toBe(0);
  });
});
