// A replay chain in wire form (replay/chain.ts: encoded tick logs and a hash table, as audit
// replay sends it to its worker) reports exactly what the item engine reports over
// the same ticks: the same verified count, failing tick, code and message, for honest and tampered
// histories alike.
import { describe, expect, it } from "vitest";
import { encodeTickLog, type LogEntry } from "../../../src/eventlog/tick-log.js";
import { buildChain, replayChain, sliceChain } from "../../../src/replay/chain.js";
import { type ReplayItem, type ReplayTarget, replay } from "../../../src/replay/engine.js";
import { liveTickItems } from "../../helpers/live-ticks.js";
import { HIDDEN_INPUT_AGENT, REPLAY_IMPORTS, replayTarget } from "../../helpers/replay-agents.js";
import { watAgent } from "../../helpers/wat.js";

// Observes rand and clock into its counter (in multiples of 16) and logs "hi"; every fourth tick
// (counter & 6 = 0: the counter grows by 2 a tick besides) observes nothing.
const AGENT = watAgent({
  imports: REPLAY_IMPORTS,
  onTick: `
    (global.set $ticks (i32.add (global.get $ticks) (i32.const 1)))
    (if (i32.ne (i32.and (global.get $ticks) (i32.const 6)) (i32.const 0))
      (then
        (drop (call $rand (i32.const 128) (i32.const 4)))
        (global.set $ticks (i32.add (global.get $ticks) (i32.and (i32.load8_u (i32.const 128)) (i32.const 0xf0))))
        (global.set $ticks (i32.add (global.get $ticks) (i32.wrap_i64 (i64.and (call $clock) (i64.const 0xf0)))))
        (call $log (i32.const 256) (i32.const 2))))`,
  extra: '(data (i32.const 256) "hi")',
});

const target = (text: string): Promise<ReplayTarget> => replayTarget(text, ["clock", "rand", "log"]);

/** As the audit records them: ticks without observations have no log and no hash. */
function asRecorded(items: ReplayItem[]): ReplayItem[] {
  return items.map((it, i) => ({
    tick: it.tick,
    ...(i === 0 ? { preState: it.preState } : {}),
    entries: it.entries,
    ...(it.entries.length > 0 && it.expectedPostHash ? { expectedPostHash: it.expectedPostHash } : {}),
    budget: 0n,
    price: 0n,
  }));
}

function chainOf(items: ReplayItem[]) {
  const byTick = new Map(items.map((it) => [it.tick, it]));
  return buildChain((items[0] as ReplayItem).tick, items.length, (items[0] as ReplayItem).preState as Uint8Array, (tick) => {
    const it = byTick.get(tick) as ReplayItem;
    return { log: it.entries.length > 0 ? encodeTickLog({ tick, entries: it.entries }) : undefined, hash: it.expectedPostHash };
  });
}

function sameOutcome(t: ReplayTarget, items: ReplayItem[]): void {
  const byItems = replay(t, items);
  const byChain = replayChain(t, chainOf(items).chain);
  expect({ verified: byChain.verified, failure: byChain.failure, finalState: byChain.finalState }).toEqual({
    verified: byItems.verified,
    failure: byItems.failure,
    finalState: byItems.finalState,
  });
}

const tamper = (items: ReplayItem[], tick: bigint, f: (it: ReplayItem) => ReplayItem): ReplayItem[] => items.map((it) => (it.tick === tick ? f(it) : it));

describe("replay chain in wire form", () => {
  it("an honest history reproduces to the same final state as the item engine, whole or cut into slices", async () => {
    const t = await target(AGENT);
    const items = asRecorded(liveTickItems(t, 30));
    expect(items.filter((it) => it.entries.length === 0).map((it) => it.tick)).toEqual([4n, 8n, 12n, 16n, 20n, 24n, 28n]);
    const whole = replayChain(t, chainOf(items).chain);
    expect(whole).toMatchObject({ verified: 30, failure: null });
    expect(whole.finalState).toEqual(replay(t, items).finalState);
    const indexed = chainOf(items);
    let state = (items[0] as ReplayItem).preState as Uint8Array;
    for (const [from, to] of [
      [0, 7],
      [7, 8],
      [8, 30],
    ] as const) {
      const out = replayChain(t, sliceChain(indexed, from, to, state));
      expect(out).toMatchObject({ verified: to - from, failure: null });
      state = out.finalState as Uint8Array;
    }
    expect(state).toEqual(whole.finalState);
  });

  it("tampered logs, hashes and hidden state fail at the same tick, with the same reason, as the item engine", async () => {
    const t = await target(AGENT);
    const items = asRecorded(liveTickItems(t, 12));
    const at5 = (f: (e: LogEntry[]) => LogEntry[]) => tamper(items, 5n, (it) => ({ ...it, entries: f(it.entries) }));
    const e5 = (items[4] as ReplayItem).entries;
    const cases: [string, ReplayItem[]][] = [
      ["hostcall swapped", at5((e) => [{ ...(e[0] as LogEntry), id: 1 }, ...e.slice(1)])],
      ["payload too short", at5((e) => [{ ...(e[0] as LogEntry), payload: new Uint8Array(3) }, ...e.slice(1)])],
      ["log cut short", at5((e) => e.slice(0, 1))],
      ["entry added", at5((e) => [...e, { id: 3, result: 0, payload: new Uint8Array(0) }])],
      ["log line altered", at5((e) => e.map((x) => (x.id === 3 ? { ...x, payload: new TextEncoder().encode("ho") } : x)))],
      ["observation altered", at5((e) => e.map((x) => (x.id === 1 ? { ...x, payload: new Uint8Array(8).fill(0x0f) } : x)))],
      ["state hash altered", tamper(items, 8n, (it) => ({ ...it, expectedPostHash: new Uint8Array(32).fill(1) }))],
      ["observations logged for a tick that observed nothing", tamper(items, 8n, (it) => ({ ...it, entries: e5 }))],
    ];
    for (const [what, tampered] of cases) {
      const out = replayChain(t, chainOf(tampered).chain);
      expect(out.failure, what).not.toBeNull();
      sameOutcome(t, tampered);
    }
    expect(e5.length).toBe(3);
    const h = await target(HIDDEN_INPUT_AGENT);
    // Resumed at tick 3 (the hidden global back at 0, where live it had counted two ticks).
    const hidden = asRecorded(liveTickItems(h, 4).slice(2));
    const out = replayChain(h, chainOf(hidden).chain);
    expect(out.failure?.tick).toBe(3n);
    expect(out.failure?.error.code).toBe("REPLAY_STATE_MISMATCH");
    sameOutcome(h, hidden);
  });
  it("a chain whose logs are out of order, run past its last tick or are cut short fails at its tick with the chain's reason", async () => {
    const t = await target(AGENT);
    const items = asRecorded(liveTickItems(t, 12));
    const base = chainOf(items).chain;
    const logOf = (tick: bigint, like = tick): Uint8Array => encodeTickLog({ tick, entries: (items[Number(like) - 1] as ReplayItem).entries });
    const withLogs = (logs: Uint8Array): ReturnType<typeof replayChain> => replayChain(t, { ...base, logs });
    // Tick 5's log placed before tick 3's: tick 3 meets a log of tick 5 (it is served nothing) and
    // fails for lack of its own; the chain's reason only when the earlier tick's log comes too late.
    const swapped = Buffer.concat([logOf(1n), logOf(2n), logOf(5n), logOf(3n)]);
    const outOfOrder = withLogs(swapped);
    expect(outOfOrder.verified).toBe(2);
    expect(outOfOrder.failure?.tick).toBe(3n);
    expect(outOfOrder.failure?.error.code).toBe("REPLAY_LOG_EXHAUSTED");
    const late = withLogs(Buffer.concat([logOf(1n), logOf(3n), logOf(2n)]));
    expect(late).toMatchObject({ verified: 1, failure: { tick: 2n } });
    expect(late.failure?.error.code).toBe("REPLAY_LOG_EXHAUSTED");
    const indexed = chainOf(items);
    const after2 = replayChain(t, sliceChain(indexed, 0, 2, (items[0] as ReplayItem).preState as Uint8Array)).finalState as Uint8Array;
    const backwards = replayChain(t, { ...sliceChain(indexed, 2, 12, after2), logs: Buffer.concat([logOf(3n), logOf(1n)]) });
    expect(backwards.verified).toBe(1);
    expect(backwards.failure?.tick).toBe(4n);
    expect(backwards.failure?.error).toMatchObject({ code: "REPLAY_UNCONSUMED", message: "the chain from tick 3 carries a log of tick 1 out of order" });
    // A log of a tick after the chain's last.
    const beyond = withLogs(Buffer.concat([base.logs, logOf(13n, 11n)]));
    expect(beyond.verified).toBe(12);
    expect(beyond.failure?.tick).toBe(12n);
    expect(beyond.failure?.error).toMatchObject({ code: "REPLAY_UNCONSUMED", message: "the chain to tick 12 carries a log of tick 13 beyond it" });
    // The last log (tick 11's; tick 12 observed nothing) cut inside its first entry's header, then
    // inside its last entry's payload: the error names the entry that does not fit.
    const at11 = base.logs.byteLength - logOf(11n).byteLength;
    const e11 = (items[10] as ReplayItem).entries;
    const lastEntryAt = at11 + 12 + e11.slice(0, -1).reduce((n, e) => n + 10 + e.payload.byteLength, 0);
    const cutHeader = withLogs(base.logs.subarray(0, at11 + 12 + 5));
    expect(cutHeader).toMatchObject({ verified: 10, failure: { tick: 11n, error: { code: "REPLAY_LOG_EXHAUSTED", message: `a tick log of the chain is truncated at byte ${at11 + 12}` } } });
    const cutPayload = withLogs(base.logs.subarray(0, base.logs.byteLength - 1));
    expect(cutPayload).toMatchObject({ verified: 10, failure: { tick: 11n, error: { code: "REPLAY_LOG_EXHAUSTED", message: `a tick log of the chain is truncated at byte ${lastEntryAt}` } } });
  });
});
