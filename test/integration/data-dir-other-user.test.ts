// A data dir this user cannot enter: an operator who runs igord (or one of its commands) as another
// user than the data dir's owner, the commonest mistake with a service account (`sudo igord …` made
// the dir root's, then `igord verify` as the service user). Every command must say the data dir is
// another user's and whose, not fail with a bare `EACCES … scandir` or claim there is no database.
// Real igord processes run as `nobody` through setpriv (root only; CI runs as root).
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { dataDirWithHeartbeat, EXAMPLES, tempDir } from "../helpers/node.js";
import { BIN } from "../helpers/process.js";

const NOBODY = ["--reuid=nobody", "--regid=nogroup", "--clear-groups"];

function canSwitchUser(): boolean {
  if (process.getuid?.() !== 0) return false;
  return spawnSync("setpriv", [...NOBODY, "true"]).status === 0;
}

/** igord run as `nobody`, to completion. */
function igordAsNobody(args: string[]) {
  return spawnSync("setpriv", [...NOBODY, process.execPath, BIN, ...args], {
    encoding: "utf8",
    timeout: 30_000,
    env: { ...process.env, IGORD_LISTEN: "off" },
  });
}

const available = canSwitchUser();

describe.skipIf(!available)("a data dir that belongs to another user", () => {
  if (!available) console.warn("skipped: needs root and setpriv to run igord as another user");

  it("every command run by another user says the data dir is not theirs and whose it is; the database is left as it was", async () => {
    const data = await dataDirWithHeartbeat();
    const root = tempDir();
    // The test's own temp dirs are private to root: let `nobody` reach the folders it is given.
    chmodSync(root, 0o755);
    const parent = join(data, "..");
    chmodSync(parent, 0o755);
    const agents = join(root, "agents");
    mkdirSync(agents, { mode: 0o755 });
    for (const f of ["heartbeat.wasm", "heartbeat.manifest.json"]) {
      copyFileSync(join(EXAMPLES, f), join(agents, f));
      chmodSync(join(agents, f), 0o644);
    }
    const db = join(data, "igord.db");
    const before = readFileSync(db);

    const daemon = igordAsNobody(["--data-dir", data, "--agents-dir", agents, "--control", "off"]);
    expect(daemon.status).toBe(1);
    expect(daemon.stderr).toMatch(/data dir .* belongs to uid 0 .* runs as uid 65534.*\[CONFIG_INVALID\]/);
    expect(daemon.stderr).not.toMatch(/scandir/);

    const run = igordAsNobody(["run", join(agents, "heartbeat.wasm"), "--data-dir", data, "--control", "off"]);
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/data dir .* belongs to uid 0 .*\[CONFIG_INVALID\]/);

    // The readers must not say there is no database: there is one, this user cannot reach it.
    for (const args of [
      ["verify", "--agent", "heartbeat"],
      ["inspect", "--agent", "heartbeat"],
      ["export", "heartbeat", "--out", join(root, "ex")],
      ["backup", join(root, "copy.db")],
      ["recover", "heartbeat", "--reason", "test"],
    ]) {
      const r = igordAsNobody([...args, "--data-dir", data]);
      expect(r.status, args.join(" ")).toBe(1);
      expect(r.stderr, args.join(" ")).not.toMatch(/no igord database/);
      expect(r.stderr, args.join(" ")).toMatch(/data dir .* belongs to uid 0 .*\[CONFIG_INVALID\]/);
    }
    expect(existsSync(join(root, "ex"))).toBe(false);
    expect(readFileSync(db).equals(before)).toBe(true);
  });
});
