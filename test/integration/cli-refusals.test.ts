// Inputs the CLI refuses: before anything is written (no data dir made for a module or a data dir
// that is not there), with a code that fits what was read, and naming both sides of a conflict
// instead of silently using one of them.
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { dataDirWithHeartbeat, ROOT, stopAllNodes, tempDir } from "../helpers/node.js";
import { igord } from "../helpers/process.js";

afterEach(stopAllNodes);

/** The entries of `dir`, [] when it is not there. */
function entries(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir) : [];
}

describe("refused before anything is written", () => {
  it("igord run of a module that is not there, or is no module, creates no data dir (igord resume checks its files before the node starts, too)", () => {
    const dir = tempDir();
    const data = join(dir, "data");
    const missing = igord(["run", join(dir, "no-such.wasm"), "--data-dir", data, "--control", "off"]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/no-such\.wasm.*\[WASM_NOT_FOUND\]/);
    expect(entries(data)).toEqual([]);
    const broken = igord(["run", join(ROOT, "package.json"), "--data-dir", data, "--control", "off"]);
    expect(broken.status).toBe(1);
    expect(broken.stderr).toMatch(/package\.json is not a valid WebAssembly module.*\[WASM_MALFORMED\]/);
    expect(entries(data)).toEqual([]);
  });

  it("igord recover on a data dir that holds no database (a typo) creates none, and says where it looked", () => {
    const data = join(tempDir(), "typo");
    const r = igord(["recover", "heartbeat", "--reason", "x", "--data-dir", data, "--control", "off"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`no igord database at ${join(data, "igord.db")}`);
    expect(r.stderr).toMatch(/\[STORE_ERROR\]/);
    expect(existsSync(data)).toBe(false);
  });
});

describe("conflicting arguments", () => {
  it("igord verify with history dirs and --agent is refused naming both, never VALID with the dirs unread", async () => {
    const dataDir = await dataDirWithHeartbeat(2n);
    const r = igord(["verify", "/nonexistent-history", "--agent", "heartbeat", "--data-dir", dataDir]);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/--agent heartbeat.*\/nonexistent-history.*\[CONFIG_INVALID\]/);
  });

  it("igord inspect with a checkpoint file and --agent is refused naming both, not the file inspected and --agent ignored", async () => {
    const dataDir = await dataDirWithHeartbeat(2n);
    const out = join(tempDir(), "export");
    expect(igord(["export", "heartbeat", "--out", out, "--data-dir", dataDir]).status).toBe(0);
    const file = join(out, "heartbeat.checkpoint");
    const r = igord(["inspect", file, "--agent", "heartbeat", "--data-dir", dataDir]);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/--agent heartbeat.*heartbeat\.checkpoint.*\[CONFIG_INVALID\]/);
    expect(igord(["inspect", file]).status).toBe(0);
    expect(igord(["inspect", "--agent", "heartbeat", "--data-dir", dataDir]).status).toBe(0);
  });
});

describe("a file the CLI cannot read", () => {
  it("a checkpoint file that is not there, or is a directory, is named as such with a checkpoint's code, not WASM_NOT_FOUND", () => {
    const dir = tempDir();
    const path = join(dir, "missing.ckpt");
    const r = igord(["inspect", path]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`igord: error: checkpoint ${path} does not exist (ENOENT) [CHECKPOINT_INVALID]\n`);
    const folder = igord(["inspect", dir]);
    expect(folder.stderr).toBe(`igord: error: checkpoint ${dir} is not a regular file (a directory) [CHECKPOINT_INVALID]\n`);
  });

  it("igord resume names an identity file that is not there IDENTITY_MISSING, before its node starts", async () => {
    const dataDir = await dataDirWithHeartbeat(2n);
    const out = join(tempDir(), "export");
    expect(igord(["export", "heartbeat", "--out", out, "--data-dir", dataDir]).status).toBe(0);
    const identity = join(out, "nope.identity");
    const data = join(tempDir(), "data");
    const r = igord(["resume", "--checkpoint", join(out, "heartbeat.checkpoint"), "--wasm", join(out, "heartbeat.wasm"), "--identity", identity, "--data-dir", data]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`igord: error: identity ${identity} does not exist (ENOENT) [IDENTITY_MISSING]\n`);
    expect(existsSync(data)).toBe(false);
  });
});
