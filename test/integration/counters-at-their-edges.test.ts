// Ticks and epochs near the top of what a node stores (SQLite's signed 64-bit integers; a checkpoint's
// header holds unsigned 64-bit ones): a validly signed checkpoint whose counters a node cannot hold
// or continue is refused with a stable code naming the field, before anything is stored, and an
// agent that reaches the last tick a node can store stops there instead of running a tick it can
// never commit. Through the real igord binary, with a signed checkpoint of a WAT agent.
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { encodeCheckpoint } from "../../src/checkpoint/codec.js";
import { GENESIS_PREV_HASH, signCheckpoint } from "../../src/checkpoint/lineage.js";
import { sha256 } from "../../src/hash/bytes.js";
import { type Ed25519Key, generateKey } from "../../src/identity/keys.js";
import { tempDir } from "../helpers/node.js";
import { igord, killAll } from "../helpers/process.js";
import { watAgent, wat2wasm } from "../helpers/wat.js";

afterEach(killAll);

const I64_MAX = 2n ** 63n - 1n;
const U64_MAX = 2n ** 64n - 1n;

let wasm: Uint8Array;
beforeAll(async () => {
  wasm = await wat2wasm(watAgent());
});

interface Crafted {
  root: string;
  data: string;
  args: string[];
}

/** A resume of `edge.wasm` from a checkpoint signed by the agent's own key at these counters (its state: the WAT agent's 4-byte counter). */
function crafted(over: { tick?: bigint; epochMajor?: bigint; epochGeneration?: bigint }): Crafted {
  const root = tempDir();
  const key: Ed25519Key = generateKey();
  const wasmPath = join(root, "edge.wasm");
  writeFileSync(wasmPath, wasm);
  const idFile = join(root, "edge.identity");
  writeFileSync(idFile, Buffer.concat([Buffer.from([64, 0, 0, 0]), key.seed, key.publicKey]));
  const unsigned = encodeCheckpoint(
    { budget: 1_000_000n, price: 1000n, tick: 1n, wasmHash: sha256(wasm), epochMajor: 0n, epochGeneration: 0n, leaseExpiry: 0n, prevHash: GENESIS_PREV_HASH, publicKey: key.publicKey },
    new Uint8Array(4),
  );
  // Written into the header as they are (the encoder refuses what a node cannot store): tick at 17, epoch at 57 and 65.
  const dv = new DataView(unsigned.buffer, unsigned.byteOffset, unsigned.length);
  if (over.tick !== undefined) dv.setBigUint64(17, over.tick, true);
  if (over.epochMajor !== undefined) dv.setBigUint64(57, over.epochMajor, true);
  if (over.epochGeneration !== undefined) dv.setBigUint64(65, over.epochGeneration, true);
  const blob = signCheckpoint(unsigned, key);
  const cpFile = join(root, "edge.checkpoint");
  writeFileSync(cpFile, blob);
  const data = join(root, "data");
  return { root, data, args: ["resume", "--checkpoint", cpFile, "--wasm", wasmPath, "--identity", idFile, "--data-dir", data, "--listen", "off", "--control", "off", "--tick-interval", "20ms", "--checkpoint-interval", "20ms"] };
}

const lines = (stdout: string): Record<string, unknown>[] =>
  stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe("counters at the edge of what a node stores", () => {
  it("a checkpoint signed at tick 2^64 − 1 is refused CHECKPOINT_INVALID naming its tick, before a node starts, and nothing is stored", () => {
    const c = crafted({ tick: U64_MAX });
    const r = igord(c.args);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/tick 18446744073709551615 .*\[CHECKPOINT_INVALID\]/);
    expect(r.stdout).not.toContain("node_starting");
    expect(existsSync(join(c.data, "igord.db"))).toBe(false);
  });

  it("a checkpoint whose epoch generation or major is at or past 2^63 is refused CHECKPOINT_INVALID naming the part", () => {
    for (const [over, field] of [
      [{ epochGeneration: I64_MAX + 1n }, "epoch generation"],
      [{ epochMajor: U64_MAX }, "epoch major"],
    ] as const) {
      const r = igord(crafted(over).args);
      expect(r.status, field).toBe(1);
      expect(r.stderr, field).toMatch(new RegExp(`${field} \\d+ .*\\[CHECKPOINT_INVALID\\]`));
      expect(r.stdout, field).not.toContain("node_starting");
    }
  });

  it("a checkpoint at epoch major 2^63 − 1 is refused by resume with LEASE_TRANSITION: there is no next major to own it at; nothing is stored", () => {
    const c = crafted({ epochMajor: I64_MAX });
    const r = igord(c.args);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/no major epoch after 9223372036854775807 .*\[LEASE_TRANSITION\]/);
    const inspect = igord(["inspect", "--agent", "edge", "--data-dir", c.data]);
    expect(inspect.status, "the agent is not stored").toBe(1);
  });

  it("an agent at tick 2^63 − 2 runs and commits its last tick 2^63 − 1, then fails TICK_LIMIT: no tick a node cannot store runs", () => {
    const c = crafted({ tick: I64_MAX - 1n });
    const r = igord(c.args);
    const out = lines(r.stdout);
    expect(r.status, r.stderr).toBe(1);
    const failed = out.find((l) => l.event === "agent_failed");
    expect(failed?.code).toBe("TICK_LIMIT");
    expect(failed?.msg).toMatch(/at tick 9223372036854775807, the largest a node stores/);
    expect(out.filter((l) => l.event === "checkpoint_saved").map((l) => String(l.tick)), "the last tick is committed").toContain(String(I64_MAX));
    expect(out.filter((l) => l.event === "checkpoint_failed"), "no checkpoint the store refused").toEqual([]);
    const inspect = igord(["inspect", "--agent", "edge", "--data-dir", c.data]);
    expect(inspect.stdout).toMatch(new RegExp(`^tick:\\s+${I64_MAX}$`, "m"));
  });
});
