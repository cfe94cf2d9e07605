// The replay engine against real WAT agents, in-process: deterministic ticks reproduce; a hidden
// (unrecorded) input diverges; tampered logs fail with the precise reason.
import { describe, expect, it } from "vitest";
import type { LogEntry } from "../../../src/eventlog/tick-log.js";
import { sha256 } from "../../../src/hash/bytes.js";
import { type ReplayItem, replay } from "../../../src/replay/engine.js";
import { liveTickItems } from "../../helpers/live-ticks.js";
import { HIDDEN_INPUT_AGENT, MASKED_BY_NEXT_TICK_AGENT, REPLAY_IMPORTS, replayTarget } from "../../helpers/replay-agents.js";
import { watAgent } from "../../helpers/wat.js";

const IMPORTS = REPLAY_IMPORTS;

// State: the tick counter at 0 plus a mix of observed values (stored by agent_checkpoint at 0..4 and
// a second word at 8 that the checkpoint covers via its length 4... keep it in the counter):
// counter += low byte of rand + low byte of clock, so the state depends on observations.
const DETERMINISTIC = watAgent({
  imports: IMPORTS,
  onTick: `
    (drop (call $rand (i32.const 128) (i32.const 4)))
    (global.set $ticks (i32.add (global.get $ticks) (i32.load8_u (i32.const 128))))
    (global.set $ticks (i32.add (global.get $ticks) (i32.wrap_i64 (i64.and (call $clock) (i64.const 255)))))
    (call $log (i32.const 256) (i32.const 2))`,
  extra: '(data (i32.const 256) "hi")',
});

const NONDETERMINISTIC = HIDDEN_INPUT_AGENT;

// Writes "hi" to the log and "msg" to its outbox every tick; neither changes its state.
const SPEAKER = watAgent({
  imports: `${IMPORTS}
  (import "igor" "emit" (func $emit (param i32 i32) (result i32)))`,
  onTick: `
    (call $log (i32.const 256) (i32.const 2))
    (drop (call $emit (i32.const 260) (i32.const 3)))`,
  extra: '(data (i32.const 256) "hi") (data (i32.const 260) "msg")',
});

function word(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v, true);
  return b;
}

function clockEntry(ns: bigint): LogEntry {
  const payload = new Uint8Array(8);
  new DataView(payload.buffer).setBigInt64(0, ns, true);
  return { id: 1, result: 0, payload };
}

const target = (text: string) => replayTarget(text, ["clock", "rand", "log", "emit"]);

/** Runs `n` live ticks, returning one replay item per tick (pre-state, log, post-state hash). */
async function liveTicks(text: string, n: number): Promise<ReplayItem[]> {
  return liveTickItems(await target(text), n);
}

describe("replay engine", () => {
  it("a deterministic agent reproduces every tick, one by one and as a chain", async () => {
    const items = await liveTicks(DETERMINISTIC, 20);
    const t = await target(DETERMINISTIC);
    expect(replay(t, items)).toMatchObject({ verified: 20, failure: null });
    const chain = items.map((it, i) => (i === 0 ? it : { ...it, preState: undefined }));
    expect(replay(t, chain)).toMatchObject({ verified: 20, failure: null });
  });

  it("an agent with an unrecorded input diverges: state hash differs", async () => {
    const items = await liveTicks(NONDETERMINISTIC, 5);
    const out = replay(await target(NONDETERMINISTIC), items.slice(3));
    expect(out.failure?.tick).toBe(4n);
    expect(out.failure?.error.code).toBe("REPLAY_STATE_MISMATCH");
  });

  it("a tick whose state diverged is caught at that tick, though a later tick of the same run overwrites the difference", async () => {
    // Live, ticks 5 and 6 of an instance that ran since tick 1: tick 5's state holds the hidden
    // count (5) in its high half, tick 6 clears it. A replay instance's hidden count starts at 0,
    // so tick 5 does not reproduce while tick 6 does: comparing only the run's last state verified both.
    const t = await replayTarget(MASKED_BY_NEXT_TICK_AGENT, ["clock"]);
    const items: ReplayItem[] = [
      { tick: 5n, preState: word(4), entries: [clockEntry(1n)], expectedPost: word(5 | (5 << 16)), budget: 1_000_000n, price: 1000n },
      { tick: 6n, entries: [clockEntry(2n)], expectedPost: word(6), budget: 1_000_000n, price: 1000n },
    ];
    expect(replay(t, items)).toMatchObject({ verified: 0, failure: { tick: 5n, error: { code: "REPLAY_STATE_MISMATCH" } } });
    // The same by hash, as evidence read from storage gives it.
    const byHash = items.map(({ expectedPost, ...it }) => ({ ...it, expectedPostHash: sha256(expectedPost as Uint8Array) }));
    expect(replay(t, byHash)).toMatchObject({ verified: 0, failure: { tick: 5n, error: { code: "REPLAY_STATE_MISMATCH" } } });
  });

  it("a chain replay reports the first tick that fails", async () => {
    const items = await liveTicks(DETERMINISTIC, 10);
    const chain = items.map((it, i) => (i === 0 ? it : { ...it, preState: undefined }));
    const bad = chain[6] as ReplayItem;
    const payload = (bad.entries[0] as LogEntry).payload.slice();
    payload[0] = (payload[0] ?? 0) ^ 0xff;
    chain[6] = { ...bad, entries: [{ ...(bad.entries[0] as LogEntry), payload }, ...bad.entries.slice(1)] };
    const out = replay(await target(DETERMINISTIC), chain);
    expect(out.verified).toBe(6);
    expect(out.failure?.tick).toBe(7n);
    expect(out.failure?.error.code).toBe("REPLAY_STATE_MISMATCH");
  });

  it("items carrying their expected post-state (as self-verification sends them) are checked byte for byte, with the verdict the hash gives", async () => {
    // Each item's post-state is the next item's pre-state; the state replaces the hash.
    const withStates = (items: ReplayItem[]): ReplayItem[] =>
      items.slice(0, -1).map(({ expectedPostHash: _h, ...it }, i) => ({ ...it, expectedPost: items[i + 1]?.preState as Uint8Array }));
    const chained = (items: ReplayItem[]): ReplayItem[] => items.map((it, i) => (i === 0 ? it : { ...it, preState: undefined }));
    const good = await liveTicks(DETERMINISTIC, 11);
    const t = await target(DETERMINISTIC);
    expect(replay(t, chained(withStates(good)))).toMatchObject({ verified: 10, failure: null });
    // One byte of the last expected state altered: that tick is named, as a changed hash would name it.
    const altered = withStates(good);
    const last = altered[9] as ReplayItem;
    const state = (last.expectedPost as Uint8Array).slice();
    state[0] = (state[0] ?? 0) ^ 1;
    altered[9] = { ...last, expectedPost: state };
    expect(replay(t, chained(altered))).toMatchObject({ verified: 9, failure: { tick: 10n, error: { code: "REPLAY_STATE_MISMATCH" } } });
    // The hidden input diverges at the same tick, with the same hashes in the details, either way.
    const hidden = await liveTicks(NONDETERMINISTIC, 6);
    const nt = await target(NONDETERMINISTIC);
    const byHash = replay(nt, chained(hidden.slice(3, 5)));
    const byState = replay(nt, chained(withStates(hidden.slice(3))));
    expect(byState.failure).toEqual(byHash.failure);
    expect(byState.failure).toMatchObject({ tick: 4n, error: { code: "REPLAY_STATE_MISMATCH" } });
  });

  it("tampered logs fail with the precise reason", async () => {
    const t = await target(DETERMINISTIC);
    const [item] = await liveTicks(DETERMINISTIC, 1);
    const e = (item as ReplayItem).entries;
    const cases: [LogEntry[], string, RegExp][] = [
      [[{ ...(e[0] as LogEntry), id: 1 }, ...e.slice(1)], "REPLAY_HOSTCALL_MISMATCH", /position 0: the agent called rand_bytes, the log recorded clock_now/],
      [[{ ...(e[0] as LogEntry), payload: new Uint8Array(3) }, ...e.slice(1)], "REPLAY_PAYLOAD_MISMATCH", /rand_bytes at position 0: payload is 3 bytes for a 4-byte request/],
      [e.slice(0, 1), "REPLAY_LOG_EXHAUSTED", /called clock_now at position 1, but the recorded log has only 1 entries/],
      [[...e, { id: 3, result: 0, payload: new Uint8Array(0) }], "REPLAY_UNCONSUMED", /1 recorded entries were left unconsumed/],
      [[e[0] as LogEntry, { ...(e[1] as LogEntry), payload: new Uint8Array(4) }, ...e.slice(2)], "REPLAY_PAYLOAD_MISMATCH", /clock_now at position 1: payload is 4 bytes, the call needs 8/],
    ];
    for (const [entries, code, message] of cases) {
      const out = replay(t, [{ ...(item as ReplayItem), entries }]);
      expect(out.failure?.error.code, `${code}: ${out.failure?.error.message}`).toBe(code);
      expect(out.failure?.error.message, code).toMatch(message);
    }
  });

  it("a log line or an emitted message altered in the log is caught byte for byte, though the state is the same", async () => {
    const t = await target(SPEAKER);
    const items = await liveTicks(SPEAKER, 3);
    expect(replay(t, items)).toMatchObject({ verified: 3, failure: null });
    const enc = new TextEncoder();
    for (const [id, forged, what] of [
      [3, enc.encode("ho"), /log_emit at position 0: the agent wrote 2 bytes that differ from the recorded 2 \(first difference at byte 1\)/],
      [3, enc.encode("hi!"), /log_emit at position 0: the agent wrote 2 bytes, the log recorded 3/],
      [10, enc.encode("MSG"), /emit at position 1: the agent wrote 3 bytes that differ from the recorded 3 \(first difference at byte 0\)/],
    ] as const) {
      const tampered = items.map((it) =>
        it.tick === 2n ? { ...it, entries: it.entries.map((e) => (e.id === id ? { ...e, payload: forged } : e)) } : it,
      );
      const out = replay(t, tampered);
      expect(out.failure?.tick).toBe(2n);
      expect(out.failure?.error.code).toBe("REPLAY_PAYLOAD_MISMATCH");
      expect(out.failure?.error.message).toMatch(what);
    }
  });

  it("error and zero-length hostcall paths replay like they ran", async () => {
    const text = watAgent({
      imports: IMPORTS,
      onTick: `
        (global.set $ticks (i32.add (global.get $ticks) (call $rand (i32.const 128) (i32.const 0))))
        (global.set $ticks (i32.add (global.get $ticks) (call $rand (i32.const 65530) (i32.const 16))))
        (call $log (i32.const 65535) (i32.const 100))`,
    });
    const items = await liveTicks(text, 3);
    expect(items[0]?.entries.map((x) => [x.id, x.result])).toEqual([
      [2, 0],
      [2, -4],
      [3, -4],
    ]);
    expect(replay(await target(text), items)).toMatchObject({ verified: 3, failure: null });
  });
});
