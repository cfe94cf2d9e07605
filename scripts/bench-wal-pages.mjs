#!/usr/bin/env node
// What group commits of periodic checkpoints write to the WAL, by B-tree: 1,000 agents whose
// histories are --history checkpoints deep (a daemon's steady state), then --rounds rounds of
// checkpoints (one each, lease-checked, an event-log segment of 5 logged ticks), each committed
// together. Each WAL frame is one 4-KiB page, so the frames per checkpoint are what its I/O costs.
// 16 rounds by default: an agent's recent keys move into checkpoint_keys once per 16 checkpoints
// (store/checkpoint-keys.ts), and the agents here move together. Runnable alone:
//   node scripts/bench-wal-pages.mjs [--agents=1000] [--history=150] [--rounds=16] [--receipt-interval=60s]
import "../dist/shim/promise-with-resolvers.js";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { loadConfig } from "../dist/config/load.js";
import { storeOptions } from "../dist/node/node.js";
import { Checkpointer } from "../dist/scheduler/checkpointer.js";
import { DB_FILE, SqliteStore } from "../dist/store/sqlite-store.js";
import { checkpointSubject, genesisAgents, tickLog } from "./bench-checkpoints.mjs";

/** A WAL file's header, and each frame's header before its page (sqlite.org/fileformat2.html#walformat). */
const WAL_HEADER_BYTES = 32;
const WAL_FRAME_HEADER_BYTES = 24;
const TICKS_PER_CHECKPOINT = 5;

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, "").split("=")));
const agents = Number(args.get("agents") ?? 1000);
const history = Number(args.get("history") ?? 150);
const rounds = Number(args.get("rounds") ?? 16);
const dir = mkdtempSync(join(tmpdir(), "igord-wal-pages-"));
const path = join(dir, DB_FILE);
const receiptInterval = args.get("receipt-interval");
const config = loadConfig({ flags: { sync: "full", "data-dir": dir, ...(receiptInterval === undefined ? {} : { "receipt-interval": receiptInterval }) }, env: {} });
// On the main thread (no commit or signer threads): a round is one group commit.
const store = SqliteStore.open(path, { ...storeOptions(config), commitThread: undefined });
const cp = new Checkpointer(store, store.nodeKey(), config.receiptIntervalMs, null, config.historyRetention);
const subjects = genesisAgents(cp, config, agents);
const round = () =>
  Promise.all(
    subjects.map((s) => {
      const logs = [];
      for (let t = 0; t < TICKS_PER_CHECKPOINT; t++) {
        s.tick += 1n;
        logs.push(tickLog(s.tick));
      }
      return cp.checkpoint(checkpointSubject(s, logs), "periodic", "active", null);
    }),
  );
for (let r = 0; r < history; r++) await round();
const db = new Database(path);
db.pragma("wal_checkpoint(TRUNCATE)");
// A read transaction from the WAL's start: no checkpoint can copy back and restart the WAL under the rounds.
db.exec("BEGIN");
db.prepare("SELECT COUNT(*) FROM agents").get();
for (let r = 0; r < rounds; r++) await round();
db.exec("COMMIT");
const checkpoints = agents * rounds;
const wal = readFileSync(`${path}-wal`);
const pageSize = wal.readUInt32BE(8);
const pages = [];
for (let off = WAL_HEADER_BYTES; off + WAL_FRAME_HEADER_BYTES + pageSize <= wal.length; off += WAL_FRAME_HEADER_BYTES + pageSize) pages.push(wal.readUInt32BE(off));
const names = new Map(db.prepare("SELECT name, pageno FROM dbstat").all().map((r) => [r.pageno, r.name]));
const byTree = new Map();
for (const p of pages) byTree.set(names.get(p) ?? "?", (byTree.get(names.get(p) ?? "?") ?? 0) + 1);
console.log(
  `${agents} agents, ${history} checkpoints deep, ${rounds} group commits of ${agents}: ${pages.length} WAL frames of ${pageSize} bytes, ${(pages.length / checkpoints).toFixed(2)} a checkpoint (${Math.round((pages.length * (pageSize + WAL_FRAME_HEADER_BYTES)) / checkpoints).toLocaleString("en-US")} bytes)`,
);
for (const [name, n] of [...byTree].sort((a, b) => b[1] - a[1])) console.log(`  ${name}: ${(n / checkpoints).toFixed(2)} pages a checkpoint`);
db.close();
store.close();
rmSync(dir, { recursive: true, force: true });
