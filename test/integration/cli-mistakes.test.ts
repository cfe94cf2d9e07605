// What a new user types first, mistakes included: a misspelt command is named as one (it was "too many
// arguments"), `igord help` helps (it was the same error), and a flag a command would ignore is
// refused rather than accepted and dropped.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { EXAMPLES, tempDir } from "../helpers/node.js";
import { igord } from "../helpers/process.js";

describe("a mistyped command line", () => {
  it("igord stauts is an unknown command, named, with the command it is nearest to; exit 1, nothing started", () => {
    const data = join(tempDir(), "data");
    const r = igord(["stauts", "--data-dir", data]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/unknown command 'stauts'/);
    expect(r.stderr).toMatch(/Did you mean status\?/);
    expect(r.stderr).not.toMatch(/too many arguments/);
    expect(r.stderr).toMatch(/Usage: igord/);
    expect(existsSync(data)).toBe(false);
  });

  it("a word that is no command at all is named too, with no suggestion", () => {
    const r = igord(["heartbeat.wasm"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/unknown command 'heartbeat\.wasm'/);
    expect(r.stderr).not.toMatch(/Did you mean/);
  });

  it("igord help prints the help (exit 0), and igord help <command> that command's", () => {
    const all = igord(["help"]);
    expect(all.status).toBe(0);
    expect(all.stdout).toMatch(/Usage: igord \[options\] \[command\]/);
    const run = igord(["help", "run"]);
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/Usage: igord run \[options\] <agent\.wasm>/);
  });

  it("igord run and igord resume refuse --upgrade-agents-dir: they watch no agents dir, so it would be accepted and ignored", () => {
    const dir = tempDir();
    const data = join(dir, "data");
    const run = igord(["run", join(EXAMPLES, "heartbeat.wasm"), "--upgrade-agents-dir", "true", "--data-dir", data, "--listen", "off"]);
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/unknown option '--upgrade-agents-dir'/);
    expect(existsSync(data)).toBe(false);
    const resume = igord(["resume", "--checkpoint", join(dir, "x.checkpoint"), "--wasm", join(EXAMPLES, "heartbeat.wasm"), "--upgrade-agents-dir", "true", "--data-dir", data]);
    expect(resume.status).toBe(1);
    expect(resume.stderr).toMatch(/unknown option '--upgrade-agents-dir'/);
    expect(igord(["run", "--help"]).stdout).not.toMatch(/--upgrade-agents-dir/);
  });
});

describe("help that says what a flag does", () => {
  it("igord resume --help does not promise a budget of 1.0: without --budget the checkpoint's budget goes on; with it, a signed override", () => {
    const line = (args: string[]) => igord(args).stdout.split("\n").find((l) => l.trimStart().startsWith("--budget")) ?? "";
    const resume = line(["resume", "--help"]);
    expect(resume).not.toMatch(/default: "1\.0"/);
    expect(resume).toMatch(/the checkpoint's budget/);
    const run = line(["run", "--help"]);
    expect(run).toMatch(/override/);
  });
});
