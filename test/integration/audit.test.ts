// Audit replay: `igord verify --replay --agent <id>` re-executes the stored history through its
// persisted event logs and confirms every later checkpoint; one altered log entry is found at its tick.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { decodeSegmentFile, encodeSegmentFile } from "../../src/replay/audit-plan.js";
import { afterEach, describe, expect, it } from "vitest";
import { decodeSegment, encodeSegment } from "../../src/eventlog/tick-log.js";
import { HostcallId } from "../../src/hostcalls/registry.js";
import type { CheckpointEvent } from "../../src/scheduler/scheduler.js";
import { DB_FILE } from "../../src/store/sqlite-store.js";
import { EXAMPLES, startTestNode, stopAllNodes } from "../helpers/node.js";
import { igord, killAll } from "../helpers/process.js";
import { segmentsDb } from "../helpers/checkpoint-store.js";
import { CAPS, watAgent, writeWat } from "../helpers/wat.js";
import { HIDDEN_INPUT_AGENT } from "../helpers/replay-agents.js";
import { loadConfig } from "../../src/config/load.js";

afterEach(async () => {
  killAll();
  await stopAllNodes();
});

async function survivorHistory(): Promise<string> {
  const t = await startTestNode({ "tick-interval": "2ms", "checkpoint-interval": "30ms" });
  await t.node.addAgent({ wasmPath: join(EXAMPLES, "survivor.wasm") });
  let written = 0;
  await t.waitFor<CheckpointEvent>("checkpoint", (e) => e.reason === "periodic" && e.outcome === "written" && ++written >= 4);
  await t.stop();
  return t.config.dataDir;
}

describe("audit replay", () => {
  // Acceptance 19: igord verify --replay re-executes from a checkpoint and confirms each later one.
  it("re-executes the whole stored history and confirms every checkpoint", async () => {
    const dataDir = await survivorHistory();
    const r = igord(["verify", "--agent", "survivor", "--replay", "--data-dir", dataDir]);
    expect(r.stdout).toMatch(/^VALID/);
    expect(r.stdout).toMatch(/replay: VALID/);
    expect(r.stdout).toMatch(/replayed \d+ ticks \(1\.\.\d+\) from the checkpoint at tick 0/);
    expect(r.stdout).toMatch(/confirmed [1-9]\d* later checkpoints/);
    // A history this short replays with JS optimisation held back (cli/audit.ts), to the same verdict.
    expect(r.stdout).toMatch(/speed: \d+ ticks\/s \(.*; JS optimisation held back for a history under 10000 ticks\)/);
    expect(r.status).toBe(0);
  });

  it("an agent that never ticked (its genesis checkpoint only) audits VALID with nothing to replay, exit 0: a script auditing every agent is not failed by a new one", async () => {
    const t = await startTestNode({ "tick-interval": "1h", "lease-duration": "2h" });
    await t.node.addAgent({ wasmPath: join(EXAMPLES, "survivor.wasm") });
    await t.stop();
    const r = igord(["verify", "--agent", "survivor", "--replay", "--data-dir", t.config.dataDir]);
    expect(r.stdout).toMatch(/^VALID/);
    expect(r.stdout).toMatch(/replay: VALID \(nothing to replay: no tick after the checkpoint at tick 0\)/);
    expect(r.status).toBe(0);
  });

  it("state a checkpoint does not capture fails the audit at the first tick after a checkpoint, as it fails the node's own verification: each checkpoint's state is resumed in a fresh instance", async () => {
    // $hidden is not in the checkpoint: replayed from genesis in one instance it reproduces every
    // state (the audit said VALID), but a node resuming any later checkpoint computes other states.
    const t = await startTestNode({ "tick-interval": "2ms", "checkpoint-interval": "30ms" });
    await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "wasm"), "hidden", HIDDEN_INPUT_AGENT, CAPS("clock", "rand", "log")) });
    let written = 0;
    await t.waitFor<CheckpointEvent>("checkpoint", (e) => e.agentId === "hidden" && e.reason === "periodic" && e.outcome === "written" && ++written >= 3);
    await t.stop();
    const r = igord(["verify", "--agent", "hidden", "--replay", "--data-dir", t.config.dataDir]);
    expect(r.stdout).toMatch(/replay: INVALID at tick \d+/);
    expect(r.stdout).toMatch(/REPLAY_STATE_MISMATCH/);
    expect(r.status).toBe(1);
  });

  // Acceptance 19: one altered log entry is found.
  it("finds a single altered log entry at the tick it belongs to", async () => {
    const dataDir = await survivorHistory();
    const db = segmentsDb(join(dataDir, DB_FILE));
    const seg = db.prepare("SELECT id, blob FROM segments WHERE agent_id = 'survivor' ORDER BY to_tick LIMIT 1 OFFSET 1").get() as {
      id: number;
      blob: Buffer;
    };
    const logs = decodeSegment(new Uint8Array(seg.blob));
    const victim = logs[Math.floor(logs.length / 2)]!;
    // Survivor's rng is in its state; its birth time too. Alter the first entry of that tick so
    // the replayed hostcall sequence or state differs.
    const entry = victim.entries[0]!;
    victim.entries[0] = { ...entry, id: entry.id === HostcallId.clock_now ? HostcallId.rand_bytes : HostcallId.clock_now };
    db.prepare("UPDATE segments SET blob = ? WHERE id = ?").run(Buffer.from(encodeSegment(logs)), seg.id);
    db.close();
    const r = igord(["verify", "--agent", "survivor", "--replay", "--data-dir", dataDir]);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain(`replay: INVALID at tick ${victim.tick}`);
    expect(r.stdout).toMatch(/REPLAY_HOSTCALL_MISMATCH: tick \d+: hostcall mismatch at position 0/);
  });

  it("a stored segment cut short is reported with EVENT_LOG_INVALID, naming where its bytes end", async () => {
    const dataDir = await survivorHistory();
    const db = segmentsDb(join(dataDir, DB_FILE));
    const seg = db.prepare("SELECT id, blob FROM segments WHERE agent_id = 'survivor' ORDER BY to_tick LIMIT 1 OFFSET 1").get() as { id: number; blob: Buffer };
    db.prepare("UPDATE segments SET blob = ? WHERE id = ?").run(seg.blob.subarray(0, seg.blob.length - 3), seg.id);
    db.close();
    const r = igord(["verify", "--agent", "survivor", "--replay", "--data-dir", dataDir]);
    expect(r.status).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/truncated.*\[?EVENT_LOG_INVALID\]?/);
  });

  it("an altered random payload is caught at its tick: the luck line the agent logs from it no longer matches the log", async () => {
    const dataDir = await survivorHistory();
    const db = segmentsDb(join(dataDir, DB_FILE));
    // Tick 1 holds survivor's birth: clock, rand (its luck and PRNG seed), log.
    const seg = db.prepare("SELECT id, blob FROM segments WHERE agent_id = 'survivor' ORDER BY to_tick LIMIT 1").get() as {
      id: number;
      blob: Buffer;
    };
    const logs = decodeSegment(new Uint8Array(seg.blob));
    const first = logs[0]!;
    const rand = first.entries.find((e) => e.id === HostcallId.rand_bytes)!;
    // survivor's luck is (u64 little-endian | 1) % 100: alter the bytes so that the luck (and so the
    // logged line) changes too — a mask that kept it (1 in 100) would leave only the state hash to differ.
    const luck = (b: Uint8Array): bigint => (Buffer.from(b).readBigUInt64LE(0) | 1n) % 100n;
    let mask = 0x55;
    while (luck(rand.payload.map((b) => b ^ mask)) === luck(rand.payload)) mask++;
    rand.payload = rand.payload.map((b) => b ^ mask);
    db.prepare("UPDATE segments SET blob = ? WHERE id = ?").run(Buffer.from(encodeSegment(logs)), seg.id);
    db.close();
    const r = igord(["verify", "--agent", "survivor", "--replay", "--data-dir", dataDir]);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain(`replay: INVALID at tick ${first.tick}`);
    // Before replay compared output bytes, the state hash caught it at the end of the tick.
    expect(r.stdout).toMatch(/REPLAY_PAYLOAD_MISMATCH: tick \d+: log_emit at position \d+: the agent wrote \d+ bytes( that differ|, the log recorded)/);
  });

  it("a log line altered in a stored segment is INVALID: the segment's signature fails and replay finds the line at its tick", async () => {
    const t = await startTestNode({ "tick-interval": "2ms", "checkpoint-interval": "30ms" });
    await t.node.addAgent({ wasmPath: join(EXAMPLES, "heartbeat.wasm") });
    let written = 0;
    await t.waitFor<CheckpointEvent>("checkpoint", (e) => e.reason === "periodic" && e.outcome === "written" && ++written >= 4);
    await t.stop();
    const db = segmentsDb(join(t.config.dataDir, DB_FILE));
    const seg = db.prepare("SELECT id, blob FROM segments WHERE agent_id = 'heartbeat' ORDER BY to_tick LIMIT 1 OFFSET 1").get() as { id: number; blob: Buffer };
    const logs = decodeSegment(new Uint8Array(seg.blob));
    const victim = logs[0]!;
    const line = victim.entries.find((e) => e.id === HostcallId.log_emit)!;
    line.payload = new TextEncoder().encode(new TextDecoder().decode(line.payload).replace("heartbeat", "HEARTBEAT"));
    db.prepare("UPDATE segments SET blob = ? WHERE id = ?").run(Buffer.from(encodeSegment(logs)), seg.id);
    db.close();
    const r = igord(["verify", "--agent", "heartbeat", "--replay", "--data-dir", t.config.dataDir]);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/reason: EVENT_LOG_FORGED: event-log segment \d+\.\.\d+ is not signed by the agent's key/);
    expect(r.stdout).toContain(`replay: INVALID at tick ${victim.tick}`);
    expect(r.stdout).toMatch(/REPLAY_PAYLOAD_MISMATCH: tick \d+: log_emit at position \d+: the agent wrote/);
  });

  it("segments recorded before this version signed them are sealed at the next start, so the history still audits VALID; an unsigned segment from elsewhere stays unverifiable", async () => {
    const dataDir = await survivorHistory();
    // The database as an igord that did not sign segments left it (what schema migration 6 marks).
    const db = segmentsDb(join(dataDir, DB_FILE));
    db.prepare("UPDATE segments SET signature = NULL, leaf = NULL, run_proof = NULL, recorded_unsigned = 1").run();
    db.prepare("DELETE FROM event_log_runs").run();
    db.close();
    expect(igord(["verify", "--agent", "survivor", "--replay", "--data-dir", dataDir]).stdout).toContain("EVENT_LOG_FORGED");
    const t = await startTestNode({ "tick-interval": "1h", "lease-duration": "2h" }, { dir: join(dataDir, "..") });
    expect(t.logs.events("segments_sealed")[0]?.count).toBeGreaterThan(0);
    await t.stop();
    const r = igord(["verify", "--agent", "survivor", "--replay", "--data-dir", dataDir]);
    expect(r.stdout).toMatch(/^VALID/);
    expect(r.status).toBe(0);
    // One that arrived unsigned (not recorded here) is never sealed.
    const db2 = segmentsDb(join(dataDir, DB_FILE));
    db2.prepare("UPDATE segments SET signature = NULL, leaf = NULL, run_proof = NULL, recorded_unsigned = 0 WHERE id = (SELECT MAX(id) FROM segments WHERE agent_id = 'survivor' AND length(blob) > 0)").run();
    db2.close();
    const t2 = await startTestNode({ "tick-interval": "1h", "lease-duration": "2h" }, { dir: join(dataDir, "..") });
    expect(t2.logs.events("segments_sealed")).toEqual([]);
    await t2.stop();
    expect(igord(["verify", "--agent", "survivor", "--replay", "--data-dir", dataDir]).stdout).toMatch(/EVENT_LOG_FORGED: event-log segment \d+\.\.\d+ carries no signature/);
  });

  it("blanked state hashes, which replay alone cannot see, make the audit INVALID by the segment's signature", async () => {
    const dataDir = await survivorHistory();
    const db = segmentsDb(join(dataDir, DB_FILE));
    const seg = db.prepare("SELECT id, post_hashes FROM segments WHERE agent_id = 'survivor' ORDER BY to_tick LIMIT 1 OFFSET 1").get() as { id: number; post_hashes: Buffer };
    db.prepare("UPDATE segments SET post_hashes = ? WHERE id = ?").run(Buffer.alloc(seg.post_hashes.byteLength), seg.id);
    db.close();
    const r = igord(["verify", "--agent", "survivor", "--replay", "--data-dir", dataDir]);
    expect(r.stdout).toMatch(/reason: EVENT_LOG_FORGED/);
    expect(r.stdout).not.toMatch(/replay: VALID/);
    expect(r.status).toBe(1);
  });

  it("audits an exported directory, and import carries the event logs to another node", async () => {
    const dataDir = await survivorHistory();
    const root = join(dataDir, "..");
    expect(igord(["export", "survivor", "--out", join(root, "ex"), "--data-dir", dataDir]).status).toBe(0);
    const events = join(root, "ex", "history", "survivor", "events");
    expect(readdirSync(events).length).toBeGreaterThan(0);
    const r = igord(["verify", "--replay", join(root, "ex")]);
    expect(r.stdout).toMatch(/^VALID/);
    expect(r.stdout).toMatch(/replay: VALID/);
    expect(r.status).toBe(0);

    expect(igord(["import", join(root, "ex"), "--data-dir", join(root, "C")]).status).toBe(0);
    const onC = igord(["verify", "--agent", "survivor", "--replay", "--data-dir", join(root, "C")]);
    expect(onC.stdout).toMatch(/replay: VALID/);

    // One altered byte in an exported segment's logs is found.
    const file = join(events, readdirSync(events).sort()[0] as string);
    const seg = decodeSegmentFile(new Uint8Array(readFileSync(file)), file);
    const logs = decodeSegment(seg.blob);
    const rand = logs[0]!.entries.find((e) => e.id === HostcallId.rand_bytes)!;
    rand.payload = rand.payload.map((b) => b ^ 0x0f);
    writeFileSync(file, encodeSegmentFile({ ...seg, blob: encodeSegment(logs) }));
    const bad = igord(["verify", "--replay", join(root, "ex")]);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toContain(`replay: INVALID at tick ${logs[0]!.tick}`);
  });

  it("--event-log-retention prunes stored logs by ticks or by size", async () => {
    for (const [retention, check] of [
      ["20", (segs: { fromTick: bigint; toTick: bigint; size: number }[], head: bigint) => segs.every((x) => x.toTick > head - 20n)],
      ["2KiB", (segs: { size: number }[]) => segs.reduce((n, x) => n + x.size, 0) <= 2048],
    ] as const) {
      const t = await startTestNode({ "tick-interval": "2ms", "checkpoint-interval": "20ms", "event-log-retention": retention });
      await t.node.addAgent({ wasmPath: join(EXAMPLES, "survivor.wasm") });
      let written = 0;
      await t.waitFor<CheckpointEvent>("checkpoint", (e) => e.reason === "periodic" && e.outcome === "written" && ++written >= 6);
      await t.stop();
      const db = segmentsDb(join(t.config.dataDir, DB_FILE), { readonly: true });
      const segs = (db.prepare("SELECT from_tick, to_tick, length(blob) + length(post_hashes) AS size FROM segments").all() as {
        from_tick: number;
        to_tick: number;
        size: number;
      }[]).map((r) => ({ fromTick: BigInt(r.from_tick), toTick: BigInt(r.to_tick), size: r.size }));
      const head = BigInt((db.prepare("SELECT MAX(tick) AS t FROM checkpoints").get() as { t: number }).t);
      db.close();
      expect(segs.length, retention).toBeGreaterThan(0);
      expect(check(segs as never, head), retention).toBe(true);
    }
  });

  it("a size retention smaller than one segment still keeps the segment just written, so the newest ticks stay verifiable", async () => {
    const t = await startTestNode({ "tick-interval": "2ms", "checkpoint-interval": "20ms", "event-log-retention": "64B" });
    await t.node.addAgent({ wasmPath: join(EXAMPLES, "heartbeat.wasm") });
    let written = 0;
    await t.waitFor<CheckpointEvent>("checkpoint", (e) => e.reason === "periodic" && e.outcome === "written" && ++written >= 3);
    await t.stop();
    const db = segmentsDb(join(t.config.dataDir, DB_FILE), { readonly: true });
    const segs = db.prepare("SELECT to_tick FROM segments WHERE agent_id = 'heartbeat'").all() as { to_tick: number }[];
    const head = (db.prepare("SELECT MAX(tick) AS t FROM checkpoints WHERE agent_id = 'heartbeat'").get() as { t: number }).t;
    db.close();
    expect(segs.map((x) => x.to_tick)).toEqual([head]);
  });

  it("event logs kept by ticks have a per-agent byte bound by default, and an agent recording 4 KiB a tick is held to a smaller one: the oldest segments go, the newest stays", async () => {
    expect(loadConfig({}).eventLogMaxBytes).toBeGreaterThan(0);
    const bound = 48 * 1024;
    const t = await startTestNode({ "tick-interval": "2ms", "checkpoint-interval": "20ms", "event-log-max-bytes": "48KiB" });
    // 4 KiB of randomness recorded each tick: 100,000 ticks of it (the tick retention) would be 400 MB.
    const wat = watAgent({ imports: '(import "igor" "rand_bytes" (func $rand (param i32 i32) (result i32)))', onTick: "(drop (call $rand (i32.const 1024) (i32.const 4096)))" });
    await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "wasm"), "noisy", wat, CAPS("rand")) });
    // 200 ticks: 800 KiB recorded, over 16 times the bound.
    await t.waitFor<CheckpointEvent>("checkpoint", (e) => e.agentId === "noisy" && e.reason === "periodic" && e.outcome === "written" && e.tick >= 200n, 30_000);
    await t.stop();
    const db = segmentsDb(join(t.config.dataDir, DB_FILE), { readonly: true });
    const segs = db.prepare("SELECT to_tick, length(blob) + length(post_hashes) AS size FROM segments WHERE agent_id = 'noisy' ORDER BY to_tick").all() as { to_tick: number; size: number }[];
    const head = (db.prepare("SELECT MAX(tick) AS t FROM checkpoints WHERE agent_id = 'noisy'").get() as { t: number }).t;
    db.close();
    const total = segs.reduce((n, x) => n + x.size, 0);
    const newest = segs.at(-1)!;
    expect(newest.to_tick).toBe(head);
    // Written: far more than the bound. Kept: the bound (summed every sixteenth of it that a connection writes, so at most 1/8 over) and the newest segment.
    expect(total).toBeLessThanOrEqual(bound + bound / 8 + newest.size);
  }, 60_000);

  it("logs recorded under another replay engine are not audited as if the agent were nondeterministic", async () => {
    const dataDir = await survivorHistory();
    const db = segmentsDb(join(dataDir, DB_FILE));
    db.prepare("UPDATE segments SET engine_version = 99").run();
    db.close();
    const r = igord(["verify", "--agent", "survivor", "--replay", "--data-dir", dataDir]);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/replay: CANNOT AUDIT/);
    expect(r.stdout).toMatch(/replay engine v99; this igord has v1/);
  });
});
