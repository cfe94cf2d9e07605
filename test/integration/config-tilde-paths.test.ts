// A leading `~` in a path a shell did not expand: a config file's "data-dir": "~/igord" (or
// IGORD_DATA_DIR="~/igord", or --data-dir=~/igord, which bash leaves alone) made a directory named
// `~` in the daemon's working directory and kept the node's keys there, where the next
// `rm -rf ~` meant for it removes the operator's home. Refused, naming where the value came from and
// the full path it most likely meant; nothing is created.
import { existsSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { tempDir } from "../helpers/node.js";
import { igord } from "../helpers/process.js";

describe("a ~ no shell expanded", () => {
  it("a config file, an IGORD_ variable or a --flag= giving a data dir or agents dir under ~ is refused naming the home path; no '~' folder is made", () => {
    const cwd = tempDir();
    const config = join(cwd, "igord.json");
    writeFileSync(config, JSON.stringify({ "data-dir": "~/igord-data", listen: "off", control: "off" }));

    const fromFile = igord(["--config", config], { ...process.env, IGORD_LISTEN: "off" }, cwd);
    expect(fromFile.status).toBe(1);
    expect(fromFile.stderr).toContain(`~/igord-data`);
    expect(fromFile.stderr).toContain(join(homedir(), "igord-data"));
    expect(fromFile.stderr).toMatch(/config key "data-dir".*\[CONFIG_INVALID\]/);

    const fromEnv = igord(["--control", "off"], { ...process.env, IGORD_LISTEN: "off", IGORD_AGENTS_DIR: "~" }, cwd);
    expect(fromEnv.status).toBe(1);
    expect(fromEnv.stderr).toMatch(/IGORD_AGENTS_DIR.*\[CONFIG_INVALID\]/);

    const fromFlag = igord(["--data-dir=~/x", "--control", "off"], { ...process.env, IGORD_LISTEN: "off" }, cwd);
    expect(fromFlag.status).toBe(1);
    expect(fromFlag.stderr).toMatch(/--data-dir.*\[CONFIG_INVALID\]/);

    expect(existsSync(join(cwd, "~"))).toBe(false);
  });
});
