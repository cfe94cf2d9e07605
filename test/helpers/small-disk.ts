// Small disks for tests of a full disk: tmpfs mounts of a given size (root only), unmounted when the
// test ends, and a file that fills one.
import { execFileSync } from "node:child_process";
import { closeSync, mkdirSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "./node.js";

const mounted: string[] = [];

/** Mounts a tmpfs of `size` (mount(8)'s syntax: "16k") at a new folder; unmounted by unmountSmallDisks. */
export function smallDisk(size: string): string {
  const dir = join(tempDir(), "disk");
  mkdirSync(dir);
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir]);
  mounted.push(dir);
  return dir;
}

/** Unmounts every small disk mounted so far (after the daemons holding files on them have exited). */
export function unmountSmallDisks(): void {
  for (const dir of mounted.splice(0)) execFileSync("umount", [dir]);
}

/** Whether this process may mount a small disk (root, with mount(8) working). */
export function canMount(): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    smallDisk("4k");
    return true;
  } catch {
    return false;
  } finally {
    unmountSmallDisks();
  }
}

/** Writes zeros into `path` until the disk has no room left. */
export function fillDisk(path: string): void {
  const fd = openSync(path, "w");
  const chunk = Buffer.alloc(4096);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOSPC") throw e;
  } finally {
    closeSync(fd);
  }
}
