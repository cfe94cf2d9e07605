// igord writes v0x05 checkpoints (domain-separated signatures) and still resumes and verifies the
// v0x04 ones an older igord wrote; but a history never steps down from v0x05 to v0x04: a v0x04
// signature has no domain, and the agent's payment receipts can pass for v0x04 checkpoints.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { encodeCheckpoint, parseCheckpoint } from "../../src/checkpoint/codec.js";
import { checkpointHash, GENESIS_PREV_HASH, signCheckpoint } from "../../src/checkpoint/lineage.js";
import { decodeIdentityFile, type Ed25519Key } from "../../src/identity/keys.js";
import { commitFromBlob } from "../../src/store/commits.js";
import { DB_FILE, SqliteStore } from "../../src/store/sqlite-store.js";
import { EXAMPLES, tempDir } from "../helpers/node.js";
import { type Daemon, igord, killAll, startDaemon } from "../helpers/process.js";

afterEach(killAll);

const HEARTBEAT = join(EXAMPLES, "heartbeat.wasm");
const FAST = ["--tick-interval", "100ms", "--checkpoint-interval", "300ms"];

async function stop(d: Daemon): Promise<void> {
  d.child.kill("SIGINT");
  expect(await d.exit).toBe(0);
}

/** The version bytes of the agent's stored history, oldest first, and its head's hash. */
function storedVersions(dataDir: string): { versions: number[]; head: Uint8Array } {
  const store = SqliteStore.open(join(dataDir, DB_FILE), { readonly: true });
  try {
    const rows = [...store.history("heartbeat")];
    return { versions: rows.map((r) => r.blob[0] as number), head: (rows.at(-1) as { hash: Uint8Array }).hash };
  } finally {
    store.close();
  }
}

/** These fields encoded as a v0x04 checkpoint, signed as an igord before v0x05 signed one. */
function asV4(fields: Parameters<typeof encodeCheckpoint>[0], state: Uint8Array, key: Ed25519Key): Uint8Array {
  const unsigned = encodeCheckpoint(fields, state);
  unsigned[0] = 4;
  return signCheckpoint(unsigned, key);
}

/**
 * A node B that stores heartbeat from a v0x04 checkpoint (what an igord before v0x05 exported: the
 * head of a short run on A, as v0x04) and ran it on: its history is v0x04 then v0x05.
 */
async function resumedFromV4(root: string): Promise<{ B: string; key: Ed25519Key; idFile: string }> {
  const A = join(root, "A");
  const a = startDaemon(["run", HEARTBEAT, "--data-dir", A, ...FAST]);
  await a.waitFor((l) => l.event === "checkpoint_saved" && l.reason === "periodic");
  await stop(a);
  const ex = join(root, "ex");
  expect(igord(["export", "heartbeat", "--out", ex, "--data-dir", A]).status).toBe(0);
  const idFile = join(ex, "heartbeat.identity");
  const key = decodeIdentityFile(new Uint8Array(readFileSync(idFile)));
  const head = parseCheckpoint(new Uint8Array(readFileSync(join(ex, "heartbeat.checkpoint"))));
  expect(head.version).toBe(5);
  writeFileSync(join(root, "old.ckpt"), asV4({ ...head, prevHash: GENESIS_PREV_HASH }, head.state, key));
  const B = join(root, "B");
  const b = startDaemon(["resume", "--checkpoint", join(root, "old.ckpt"), "--wasm", HEARTBEAT, "--identity", idFile, "--data-dir", B, ...FAST]);
  await b.waitFor((l) => l.event === "checkpoint_saved" && l.reason === "periodic");
  await stop(b);
  return { B, key, idFile };
}

describe("checkpoint versions along a history", () => {
  it("a node resuming a stored agent whose head is v0x04 writes v0x05 next, and the history verifies", { timeout: 60_000 }, async () => {
    const { B } = await resumedFromV4(tempDir());
    const { versions } = storedVersions(B);
    expect(versions[0]).toBe(4);
    expect(versions.slice(1).length).toBeGreaterThan(0);
    expect(new Set(versions.slice(1))).toEqual(new Set([5]));
    const ins = igord(["inspect", "--agent", "heartbeat", "--data-dir", B]);
    expect(ins.stdout).toMatch(/^version:\s+0x05 \(header 209 bytes\)$/m);
    expect(ins.stdout).toMatch(/^signature:\s+VALID$/m);
    const v = igord(["verify", "--agent", "heartbeat", "--data-dir", B]);
    expect(v.stdout).toMatch(/^VALID/);
    expect(v.status).toBe(0);
  });

  it("resume --checkpoint refuses a v0x04 checkpoint that extends a stored v0x05 head, signed by the agent's key, and stores nothing; verify of that history is INVALID", { timeout: 60_000 }, async () => {
    const root = tempDir();
    const { B, key, idFile } = await resumedFromV4(root);
    const before = storedVersions(B);
    const store = SqliteStore.open(join(B, DB_FILE), { readonly: true });
    const headBlob = (store.head("heartbeat") as { blob: Uint8Array }).blob;
    store.close();
    const head = parseCheckpoint(headBlob);
    expect(head.version).toBe(5);
    // What a payment receipt read as a checkpoint would be: v0x04, signed by the agent, chained onto its head.
    const next = asV4({ ...head, tick: head.tick + 1n, prevHash: checkpointHash(headBlob) }, head.state, key);
    writeFileSync(join(root, "next.ckpt"), next);
    for (const identity of [["--identity", idFile], []]) {
      const r = igord(["resume", "--checkpoint", join(root, "next.ckpt"), "--wasm", HEARTBEAT, ...identity, "--data-dir", B, ...FAST]);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/next\.ckpt \(tick \d+\) may not follow the head stored for "heartbeat": v0x04 after a v0x05 checkpoint .*nothing was changed \[CHECKPOINT_VERSION\]/);
    }
    const after = storedVersions(B);
    expect(after.versions).toEqual(before.versions);
    expect(after.head).toEqual(before.head);
    expect(igord(["verify", "--agent", "heartbeat", "--data-dir", B]).stdout).toMatch(/^VALID/);
    // The same checkpoint laid after the head in an exported history: igord verify names the step down.
    const ex = join(root, "exB");
    expect(igord(["export", "heartbeat", "--out", ex, "--data-dir", B]).status).toBe(0);
    const name = `${String(head.tick + 1n).padStart(10, "0")}.ckpt`;
    writeFileSync(join(ex, "history", "heartbeat", name), next);
    const v = igord(["verify", join(ex, "history", "heartbeat")]);
    expect(v.status).toBe(1);
    expect(v.stdout).toMatch(/^INVALID/);
    expect(v.stdout).toContain(`${name}: v0x04 after a v0x05 checkpoint`);
    expect(v.stdout).not.toMatch(/signature INVALID|prevHash does not match/);
  });

  it("the store appends no v0x04 checkpoint after a v0x05 head, whoever asks", { timeout: 60_000 }, async () => {
    const { B, key } = await resumedFromV4(tempDir());
    const store = SqliteStore.open(join(B, DB_FILE));
    try {
      const row = store.head("heartbeat") as { blob: Uint8Array; hash: Uint8Array };
      const head = parseCheckpoint(row.blob);
      const next = asV4({ ...head, tick: head.tick + 1n, prevHash: row.hash }, head.state, key);
      expect(() => store.appendCheckpoint(commitFromBlob("heartbeat", next, "resumed"))).toThrow(/v0x04 after a v0x05 checkpoint/);
      expect(store.head("heartbeat")?.hash).toEqual(row.hash);
    } finally {
      store.close();
    }
  });
});
