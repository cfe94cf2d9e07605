// A damaged database and a full disk, met by the commands that read the database (inspect, verify,
// export, lineage, backup) and by a start: each says which it is (STORE_CORRUPT with a restore from a
// backup, DISK_FULL) and names the file, as the daemon's own check does; they said only SQLite's
// "database disk image is malformed" or "database or disk is full". An export that fails removes
// what it created. Real igord processes; the full disk is a small tmpfs (root only: skipped else).
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, writeSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { EXAMPLES, tempDir } from "../helpers/node.js";
import { igord, killAll, startDaemon } from "../helpers/process.js";
import { canMount, smallDisk, unmountSmallDisks } from "../helpers/small-disk.js";

afterEach(async () => {
  // A daemon still holding files on a small disk keeps it busy: unmounted once it has exited.
  await killAll();
  unmountSmallDisks();
});

/** A data dir whose survivor has checkpointed and recorded event logs, the daemon stopped. */
async function stoppedNode(): Promise<{ root: string; data: string }> {
  const root = tempDir();
  const agents = join(root, "agents");
  mkdirSync(agents);
  for (const f of ["survivor.wasm", "survivor.manifest.json"]) copyFileSync(join(EXAMPLES, f), join(agents, f));
  const data = join(root, "data");
  const d = startDaemon(["--agents-dir", agents, "--data-dir", data, "--control", "off", "--tick-interval", "5ms", "--checkpoint-interval", "20ms"]);
  await d.waitFor((l) => l.event === "checkpoint_saved" && l.agent === "survivor" && Number(l.tick) >= 50);
  d.child.kill("SIGINT");
  expect(await d.exit).toBe(0);
  return { root, data };
}

/** Garbage over the root page of `table`, as a bad sector would leave it. */
function damage(data: string, table: string): void {
  const file = join(data, "igord.db");
  const db = new Database(file);
  const pageSize = db.pragma("page_size", { simple: true }) as number;
  const root = (db.prepare("SELECT rootpage FROM sqlite_master WHERE name = ?").get(table) as { rootpage: number }).rootpage;
  db.close();
  const fd = openSync(file, "r+");
  writeSync(fd, Buffer.alloc(pageSize, 0xa5), 0, pageSize, (root - 1) * pageSize);
  closeSync(fd);
}

const corrupt = (data: string) => new RegExp(`${join(data, "igord.db").replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")} is corrupt.*restore it from a backup.*\\[STORE_CORRUPT\\]`);

describe("a damaged database", () => {
  it("inspect, verify, export and backup say STORE_CORRUPT, naming the file and a restore from a backup", async () => {
    const { root, data } = await stoppedNode();
    damage(data, "checkpoints");
    const commands = [
      ["inspect", "--agent", "survivor"],
      ["verify", "--agent", "survivor"],
      ["export", "survivor", "--out", join(root, "export")],
      ["backup", join(root, "copy.db")],
    ];
    for (const args of commands) {
      const r = igord([...args, "--data-dir", data]);
      expect(r.status, args.join(" ")).toBe(1);
      expect(r.stderr, args.join(" ")).toMatch(corrupt(data));
    }
    expect(existsSync(join(root, "copy.db"))).toBe(false);
  }, 60_000);

  it("an export that meets the damage after writing files removes the folder it created", async () => {
    const { root, data } = await stoppedNode();
    // Read after the checkpoints are written: the lineage events.
    damage(data, "lineage_events");
    const out = join(root, "export");
    const r = igord(["export", "survivor", "--out", out, "--data-dir", data]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(corrupt(data));
    expect(existsSync(out)).toBe(false);
  }, 60_000);
});

describe.skipIf(!canMount())("a full disk", () => {
  it("a start on it says DISK_FULL naming the data dir's file, not only SQLite's message", () => {
    const disk = smallDisk("16k");
    const data = join(disk, "data");
    const r = igord(["--agents-dir", join(tempDir(), "agents"), "--data-dir", data, "--control", "off", "--listen", "off"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(data);
    expect(r.stderr).toMatch(/disk is full.*\[DISK_FULL\]/);
  });

  it("a start with room for the database but not its shared-memory file says DISK_FULL too", () => {
    // Between 24 and 48 KiB free the database is created and the WAL's -shm file is what finds no room.
    for (const size of ["24k", "32k", "40k", "48k"]) {
      const disk = smallDisk(size);
      const data = join(disk, "data");
      const r = igord(["--agents-dir", join(tempDir(), "agents"), "--data-dir", data, "--control", "off", "--listen", "off"]);
      expect(r.status, size).toBe(1);
      expect(r.stderr, size).toContain(data);
      expect(r.stderr, size).toMatch(/\[DISK_FULL\]/);
    }
  });

  it("a disk that fills while the daemon runs fails the agent's checkpoint with DISK_FULL", async () => {
    const disk = smallDisk("1m");
    const agents = join(tempDir(), "agents");
    mkdirSync(agents);
    for (const f of ["survivor.wasm", "survivor.manifest.json"]) copyFileSync(join(EXAMPLES, f), join(agents, f));
    const d = startDaemon(["--agents-dir", agents, "--data-dir", join(disk, "data"), "--control", "off", "--tick-interval", "2ms", "--checkpoint-interval", "5ms"]);
    const failed = await d.waitFor((l) => l.event === "checkpoint_failed" && l.agent === "survivor", 30_000);
    expect(failed.code).toBe("DISK_FULL");
    expect(String(failed.msg)).toMatch(/disk is full/);
  }, 60_000);

  it("an export cut off by it says DISK_FULL naming the file, and removes what it created: a folder it made, the files in one given empty", async () => {
    const { data } = await stoppedNode();
    const disk = smallDisk("64k");
    const made = join(disk, "export");
    const r = igord(["export", "survivor", "--out", made, "--data-dir", data]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(made);
    expect(r.stderr).toMatch(/disk is full \(ENOSPC\).*\[DISK_FULL\]/);
    expect(readdirSync(disk)).toEqual([]);
    // A folder that was there (empty) stays; what the export wrote into it goes.
    const given = join(disk, "given");
    mkdirSync(given);
    expect(igord(["export", "survivor", "--out", given, "--data-dir", data]).stderr).toMatch(/\[DISK_FULL\]/);
    expect(readdirSync(disk)).toEqual(["given"]);
    expect(readdirSync(given)).toEqual([]);
  }, 60_000);
});
