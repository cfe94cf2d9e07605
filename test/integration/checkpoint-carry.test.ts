// A checkpoint that fails — its signature cannot be made, or the store refuses its write — after its
// event-log segment was encoded: the ticks' logs (and messages) it held go with the next checkpoint,
// byte for byte, so the stored segment covers every logged tick of its range. The checkpointer no
// longer keeps the tick logs themselves for this (they die once encoded): it decodes them from the
// failed checkpoint's segment.
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { decodeSegment, type TickLog } from "../../src/eventlog/tick-log.js";
import { hex } from "../../src/hash/bytes.js";
import { HostcallId } from "../../src/hostcalls/registry.js";
import { SignerPool } from "../../src/identity/signer-pool.js";
import { DB_FILE, SqliteStore } from "../../src/store/sqlite-store.js";
import { agentOnCheckpointer } from "../helpers/checkpointer.js";
import { tempDir } from "../helpers/node.js";

const text = new TextEncoder();

/** A tick's log: two entries (one with an empty payload), a post-state hash of its own. */
function log(tick: bigint): TickLog {
  return {
    tick,
    entries: [
      { id: HostcallId.log_emit, result: 0, payload: text.encode(`line ${tick}`) },
      { id: HostcallId.clock_now, result: -3, payload: new Uint8Array(0) },
    ],
    postHash: new Uint8Array(32).fill(Number(tick) * 7),
  };
}

describe("a failed checkpoint's tick logs", () => {
  // Receipts with every checkpoint and no signer threads: the checkpointer's general path. Signer
  // threads and no receipt due: each periodic checkpoint goes as one object in flight (the signer
  // pool's target and the store's queued commit), whose failure paths must do the same.
  it.each([
    ["signed inline, a receipt with each", false],
    ["on the signer pool, no receipt due", true],
  ])("go with the next checkpoint after a signing failure and after a refused write: its segment holds every tick's entries and post hash, and the messages are published with it (%s)", async (_, pooled) => {
    const store = SqliteStore.open(join(tempDir(), DB_FILE));
    const signer = pooled ? new SignerPool(2) : undefined;
    try {
      const { cp, identity, base } = agentOnCheckpointer(store, signer ? { signer, receiptIntervalMs: 60_000 } : {});
      const outbox = (tick: bigint) => [{ tick, epochMajor: 0n, messages: [text.encode(`msg ${tick}`)] }];
      // Tick 1: the agent's key cannot sign (its private half is a public key).
      const broken = { ...identity, privateKeyObject: identity.publicKeyObject, secretKey: new Uint8Array(0) };
      await expect(cp.checkpoint({ ...base, identity: broken, tick: 1n, state: new Uint8Array([1]), logs: [log(1n)], outbox: outbox(1n) }, "periodic", "active", null)).rejects.toThrow();
      // Tick 2: signed, but the store refuses the write (its segment insert aborts).
      const db = new Database(store.path);
      db.exec("CREATE TRIGGER segment_refused BEFORE INSERT ON checkpoints WHEN NEW.seg_blob IS NOT NULL BEGIN SELECT RAISE(ABORT, 'segment refused'); END");
      await expect(cp.checkpoint({ ...base, tick: 2n, state: new Uint8Array([2]), logs: [log(2n)], outbox: outbox(2n) }, "periodic", "active", null)).rejects.toThrow(/segment refused/);
      db.exec("DROP TRIGGER segment_refused");
      db.close();
      expect(store.eventSegments("a")).toEqual([]);
      // Tick 3 is written, with ticks 1 and 2.
      expect(await cp.checkpoint({ ...base, tick: 3n, state: new Uint8Array([3]), logs: [log(3n)], outbox: outbox(3n) }, "periodic", "active", null)).toBe("written");
      const segments = store.eventSegments("a");
      expect(segments.length).toBe(1);
      const [segment] = segments;
      expect(segment).toMatchObject({ fromTick: 1n, toTick: 3n });
      const want = [log(1n), log(2n), log(3n)];
      expect(decodeSegment(segment!.blob)).toEqual(want.map(({ tick, entries }) => ({ tick, entries })));
      expect(hex(segment!.postHashes)).toBe(want.map((l) => hex(l.postHash!)).join(""));
      expect(store.outbox("a").map((m) => [m.tick, new TextDecoder().decode(m.payload)])).toEqual([
        [1n, "msg 1"],
        [2n, "msg 2"],
        [3n, "msg 3"],
      ]);
      if (signer) expect(store.receipts("a")).toEqual([]);
    } finally {
      await signer?.close();
      store.close();
    }
  });
});
