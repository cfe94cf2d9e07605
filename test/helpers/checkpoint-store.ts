// What the checkpoint-commit and commit-thread tests share: an agent's lease, a tiny module, and
// fresh SQLite files removed after each test.
import { rmSync } from "node:fs";
import { join } from "node:path";
import { afterEach } from "vitest";
import type { Lease } from "../../src/authority/lease.js";
import { DB_FILE } from "../../src/store/sqlite-store.js";
import { tempDir } from "./node.js";

export const lease: Lease = { state: "ACTIVE_OWNER", epoch: { major: 0n, generation: 0n }, expiresAtMs: null, handoff: null };
export const WASM = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]);
export const WASM_HASH = "93a44bbb96c751218e4c00d479e4c14358122a389acca16205b1e4d0dc5f9476";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A database path in a fresh directory, removed after the test. */
export function freshDbPath(): string {
  const dir = tempDir();
  dirs.push(dir);
  return join(dir, DB_FILE);
}
