// Planning an audit (pure): the chain starts at the earliest checkpoint from which every later tick's
// log is stored, carries each tick's encoded log, and expects each recorded state hash (a
// checkpoint's own state at its tick; none where the recorded hash is all zeros).
import { describe, expect, it } from "vitest";
import { encodeSegment, type TickLog } from "../../../src/eventlog/tick-log.js";
import { sha256 } from "../../../src/hash/bytes.js";
import { HOSTCALL_ABI_VERSION } from "../../../src/hostcalls/registry.js";
import { type AuditSegment, planAudit } from "../../../src/replay/audit-plan.js";
import { CHECKPOINTED, HASHED } from "../../../src/replay/chain.js";
import { REPLAY_ENGINE_VERSION } from "../../../src/replay/engine.js";

const state = (n: number): Uint8Array => new Uint8Array([n, n, n]);
const cp = (tick: bigint) => ({ tick, state: state(Number(tick)) });
const hashOf = (tick: bigint): Uint8Array => new Uint8Array(32).fill(Number(tick));

/** A segment over [from, to] whose ticks in `observed` logged one clock reading (and a hash; tick 7's is all zeros). */
function segment(from: bigint, to: bigint, observed: bigint[]): AuditSegment {
  const logs: TickLog[] = observed.map((tick) => ({ tick, entries: [{ id: 1, result: 0, payload: new Uint8Array(8).fill(Number(tick)) }] }));
  const postHashes = new Uint8Array(32 * logs.length);
  observed.forEach((tick, i) => postHashes.set(tick === 7n ? new Uint8Array(32) : hashOf(tick), i * 32));
  return { fromTick: from, toTick: to, abiVersion: HOSTCALL_ABI_VERSION, engineVersion: REPLAY_ENGINE_VERSION, blob: encodeSegment(logs), postHashes };
}

describe("audit plan", () => {
  it("starts after the last gap in the stored logs, at the checkpoint that follows it", () => {
    // Checkpoints at 0, 4, 8, 12; logs for 1..4 and 9..12 but not 5..8: the audit starts at 8.
    const plan = planAudit([cp(0n), cp(4n), cp(8n), cp(12n)], [segment(1n, 4n, [2n]), segment(9n, 12n, [10n, 11n])]);
    expect(plan.start?.tick).toBe(8n);
    expect(plan.checkpointTicks).toEqual([12n]);
    expect(plan.chain?.chain).toMatchObject({ fromTick: 9n, count: 4 });
    // With 5..8 stored too, from genesis: segments are walked back one at a time.
    const whole = planAudit([cp(0n), cp(4n), cp(8n), cp(12n)], [segment(1n, 4n, [2n]), segment(5n, 8n, [7n]), segment(9n, 12n, [10n, 11n])]);
    expect(whole.start?.tick).toBe(0n);
    expect(whole.checkpointTicks).toEqual([4n, 8n, 12n]);
    expect(whole.chain?.chain).toMatchObject({ fromTick: 1n, count: 12 });
  });

  it("carries each tick's log and expected hash: recorded ones, checkpoints' own states, none for all zeros", () => {
    const plan = planAudit([cp(0n), cp(4n), cp(8n)], [segment(1n, 4n, [2n, 4n]), segment(5n, 8n, [7n])]);
    const chain = plan.chain?.chain;
    if (!chain) throw new Error("no chain");
    const expected = (i: number): Uint8Array | null => (chain.hashed[i] !== 0 ? chain.hashes.subarray(i * 32, i * 32 + 32) : null);
    expect(expected(1)).toEqual(hashOf(2n));
    expect(expected(3)).toEqual(sha256(state(4)));
    expect(expected(6)).toBeNull();
    expect(expected(7)).toEqual(sha256(state(8)));
    expect([0, 2, 4, 5].map(expected)).toEqual([null, null, null, null]);
    // The checkpoints' ticks (4 and 8) are resumed in a fresh instance after their check; a recorded hash only checked.
    expect([...chain.hashed]).toEqual([0, HASHED, 0, CHECKPOINTED, 0, 0, 0, CHECKPOINTED]);
    // The logs of ticks 2, 4 and 7, back to back, as recorded.
    expect(Buffer.from(chain.logs)).toEqual(Buffer.concat([segment(1n, 4n, [2n, 4n]).blob, segment(5n, 8n, [7n]).blob]));
    expect(plan.chain?.logStarts[6]).toBe(2 * (12 + 18));
  });
});
