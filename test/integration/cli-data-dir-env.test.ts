// The commands that open a node's database themselves (inspect, verify, lineage, export, backup,
// import, recover) find its data dir as the daemon, `igord run` and `igord status` do: --data-dir,
// else IGORD_DATA_DIR, else ./data. They read ./data whatever IGORD_DATA_DIR said, and igord import
// wrote the agent into a new ./data with a node key of its own.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterEach, expect, it } from "vitest";
import { stopAll } from "../../src/testing/index.js";
import { dataDirWithHeartbeat, startTestNode, storedHead, tempDir } from "../helpers/node.js";
import { igord } from "../helpers/process.js";

afterEach(stopAll);

/** igord run in a fresh working directory (no ./data of its own) with IGORD_DATA_DIR set. */
function withDataDirEnv(args: string[], dataDir: string): ReturnType<typeof igord> & { cwd: string } {
  const cwd = tempDir();
  return { ...igord(args, { ...process.env, IGORD_LISTEN: "off", IGORD_CONTROL: "", IGORD_DATA_DIR: dataDir }, cwd), cwd };
}

it("inspect, verify, lineage, export and backup read the data dir IGORD_DATA_DIR names, as igord status does", async () => {
  const dataDir = await dataDirWithHeartbeat();
  const out = tempDir();
  for (const args of [
    ["inspect", "--agent", "heartbeat"],
    ["verify", "--agent", "heartbeat"],
    ["lineage", "heartbeat"],
    ["export", "heartbeat", "--out", join(out, "export")],
    ["backup", join(out, "copy.db")],
  ]) {
    const r = withDataDirEnv(args, dataDir);
    expect({ args, stderr: r.stderr.replace(/^verified \d+ checkpoints…\n/gm, ""), status: r.status }).toEqual({ args, stderr: "", status: 0 });
    expect(existsSync(join(r.cwd, "data"))).toBe(false);
  }
  // recover reads it too: the agent is found there, healthy, so there is nothing to recover.
  const recover = withDataDirEnv(["recover", "heartbeat", "--reason", "test", "--control", "off"], dataDir);
  expect(recover.stderr).toMatch(/agent "heartbeat" is ACTIVE_OWNER at .*: nothing to recover \[LEASE_TRANSITION\]/);
  expect(existsSync(join(recover.cwd, "data"))).toBe(false);
});

it("igord import writes into the data dir IGORD_DATA_DIR names, never into a new ./data", async () => {
  const source = await dataDirWithHeartbeat();
  const out = join(tempDir(), "export");
  expect(igord(["export", "heartbeat", "--out", out, "--data-dir", source]).status).toBe(0);
  const empty = await startTestNode();
  await empty.stop();
  const target = empty.config.dataDir;
  const r = withDataDirEnv(["import", out], target);
  expect(r.status).toBe(0);
  expect({ createdInCwd: existsSync(join(r.cwd, "data")), inTarget: storedHead(target, "heartbeat") !== undefined }).toEqual({ createdInCwd: false, inTarget: true });
  expect(r.stdout).toContain(`into ${join(target, "igord.db")}`);
});

it("--data-dir still wins over IGORD_DATA_DIR", async () => {
  const dataDir = await dataDirWithHeartbeat();
  const r = withDataDirEnv(["inspect", "--agent", "heartbeat", "--data-dir", dataDir], join(tempDir(), "elsewhere"));
  expect(r.status).toBe(0);
  expect(r.stdout).toContain("agent heartbeat");
});
