// A daemon out of file descriptors (a low `ulimit -n`, local callers holding connections open) must
// not take that for an operator deleting its lock file. The holder's lock check (every
// LOCK_CHECK_INTERVAL_MS) reads the pid file beside the lock: a read that fails for want of a
// descriptor said the pid file was not this process's, and the daemon logged
// `data_dir_lock_unrestorable` ("the data dir's lock file was deleted or replaced and cannot be put
// back: cannot write data/igord.pid: EMFILE"), an error about something nobody did.
// A real process under `prlimit --nofile`, with the built DataDirLock, exhausts its own descriptors.
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT, tempDir } from "../helpers/node.js";

/** Descriptors the child may hold: a few dozen above what node itself opens. */
const CHILD_NOFILE = 256;

const available = process.platform === "linux" && spawnSync("prlimit", ["--nofile=256:256", "true"]).status === 0;

const CHILD = `
import { openSync, closeSync } from "node:fs";
import { DataDirLock } from ${JSON.stringify(join(ROOT, "dist", "store", "data-dir.js"))};
const lock = DataDirLock.acquire(process.argv[2]);
const held = [];
try { for (;;) held.push(openSync("/dev/null", "r")); } catch (e) { if (e.code !== "EMFILE") throw e; }
const r = lock.check();
for (const fd of held) closeSync(fd);
const after = lock.check();
lock.release();
console.log(JSON.stringify({ exhaustedAt: held.length, check: r.state, message: r.error?.message ?? null, after: after.state }));
`;

describe.skipIf(!available)("the lock check without file descriptors", () => {
  if (!available) console.warn("skipped: needs Linux and prlimit");

  it("a lock check while the process has no descriptor left finds its lock held, not deleted, and leaves the pid file as it was", () => {
    const dir = tempDir();
    const data = join(dir, "data");
    const script = join(dir, "check.mjs");
    writeFileSync(script, CHILD);
    const r = spawnSync("prlimit", [`--nofile=${CHILD_NOFILE}:${CHILD_NOFILE}`, process.execPath, script, data], { encoding: "utf8", timeout: 30_000 });
    expect(r.stderr).toBe("");
    const out = JSON.parse(r.stdout) as { exhaustedAt: number; check: string; message: string | null; after: string };
    expect(out.exhaustedAt).toBeGreaterThan(0);
    expect(out).toMatchObject({ check: "held", message: null, after: "held" });
    expect(readFileSync(join(data, "igord.pid"), "utf8").trim()).toMatch(/^\d+$/);
  });
});
