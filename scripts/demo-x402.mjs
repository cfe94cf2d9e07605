#!/usr/bin/env node
// npm run demo:x402 — igor's x402 flow on one machine: the paywall, a daemon (temp data dir, no
// control API, no p2p) running x402buyer, and the agent's way from 402 to paid data in their logs:
//   GET → 402 terms → payment intent recorded → checkpoint → wallet_pay → GET with X-Payment → 200.
// Then it shows the paywall refusing the same receipt again, stops the daemon and the paywall, and
// audits the agent's stored history with `igord verify --replay` while no server is running.
// PAYWALL_ADDR picks the paywall's address (default 127.0.0.1:8402, igor's; a free port if that is
// taken, with the agent rebuilt for it); DEMO_TIMEOUT_MS bounds the run.
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildAgent } from "./build-agents.mjs";
import { startPaywall } from "./mock/paywall.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const BIN = join(root, "dist", "cli", "main.js");
const AGENT = "x402buyer";
/** The port examples/x402buyer is built for (igor's paywall address). */
const IGOR_PAYWALL_PORT = 8402;
const TIMEOUT_MS = Number(process.env.DEMO_TIMEOUT_MS ?? 60_000);
const DAEMON_FLAGS = [
  "--control", "off", "--listen", "off", "--budget", "1",
  "--capabilities", "clock,log,rand,wallet,http,x402",
  // The paywall runs on this machine: a node refuses loopback destinations unless told otherwise.
  "--http-private-networks", "127.0.0.0/8",
  // Quick ticks and checkpoints, so the intent → checkpoint → pay sequence shows in seconds.
  "--tick-interval", "300ms", "--checkpoint-interval", "300ms", "--lease-duration", "5s",
];

const say = (who, line) => console.log(`${who.padEnd(10)} ${line}`);

if (!existsSync(BIN)) {
  console.error("demo:x402: dist/ is missing; run `npm run build` first");
  process.exit(1);
}

const work = mkdtempSync(join(tmpdir(), "igord-x402-demo-"));
const logPaywall = (line) => say("paywall", line.replace(/^\[paywall\] /, ""));
// igor's address (the agent as built in examples/ calls localhost:8402), unless PAYWALL_ADDR says
// otherwise or 8402 is taken: then any free port, and the agent is rebuilt for it.
let paywall;
try {
  paywall = await startPaywall({ addr: process.env.PAYWALL_ADDR || `127.0.0.1:${IGOR_PAYWALL_PORT}`, log: logPaywall });
} catch (e) {
  if (process.env.PAYWALL_ADDR || e?.code !== "EADDRINUSE") throw e;
  say("demo", `port ${IGOR_PAYWALL_PORT} is taken: the paywall takes a free port and x402buyer is rebuilt for it`);
  paywall = await startPaywall({ host: "127.0.0.1", port: 0, log: logPaywall });
}

// The agent, aimed at this paywall's port, alone in its agents dir with its manifest.
const agentsDir = join(work, AGENT);
mkdirSync(agentsDir);
const prebuilt = join(root, "examples", AGENT, "agent.wasm");
if (paywall.port === IGOR_PAYWALL_PORT && existsSync(prebuilt)) {
  copyFileSync(prebuilt, join(agentsDir, "agent.wasm"));
} else {
  await buildAgent(join(root, "examples", AGENT, "agent.ts"), join(agentsDir, "agent.wasm"), {
    force: true,
    defines: { IGOR_PAYWALL_PORT: paywall.port },
  });
}
copyFileSync(join(root, "examples", AGENT, "agent.manifest.json"), join(agentsDir, "agent.manifest.json"));
const dataDir = join(work, "data");
say("demo", `paywall on localhost:${paywall.port}, data dir ${dataDir}`);

const daemon = spawn(process.execPath, [BIN, "--agents-dir", agentsDir, "--data-dir", dataDir, ...DAEMON_FLAGS], {
  stdio: ["ignore", "pipe", "inherit"],
});
const exited = new Promise((resolve) => daemon.on("exit", (code) => resolve(code)));

let finish;
const done = new Promise((resolve) => (finish = resolve));
let buf = "";
daemon.stdout.on("data", (d) => {
  buf += d.toString();
  const lines = buf.split("\n");
  buf = lines.pop() ?? "";
  for (const raw of lines) {
    if (!raw.trim()) continue;
    let l;
    try {
      l = JSON.parse(raw);
    } catch {
      say("igord", raw);
      continue;
    }
    if (l.event === "agent_log") {
      say(`tick ${l.tick}`, l.msg);
      if (String(l.msg).startsWith("[x402buyer] PREMIUM DATA RECEIVED")) finish("paid");
    } else if (l.level >= 40 || /pay|checkpoint_saved|agent_started|agent_failed/.test(String(l.event))) {
      say("igord", `${l.event}${l.tick !== undefined ? ` tick=${l.tick}` : ""}: ${l.msg}`);
    }
  }
});
exited.then((code) => finish(`igord exited (${code})`));
const timer = setTimeout(() => finish("timeout"), TIMEOUT_MS);
const outcome = await done;
clearTimeout(timer);

let ok = outcome === "paid";
if (ok && paywall.stats.lastAccepted) {
  const again = await fetch(`http://127.0.0.1:${paywall.port}/api/premium-data`, { headers: { "X-Payment": paywall.stats.lastAccepted } });
  say("demo", `the same receipt once more → ${again.status} ${again.headers.get("x-payment-error") ?? ""}`);
  ok = again.status === 409;
}
if (daemon.exitCode === null) {
  daemon.kill("SIGINT");
  const code = await exited;
  if (code !== 0) ok = false;
}
await paywall.close();
say("demo", `paywall stopped: ${paywall.stats.payments402} × 402, ${paywall.stats.delivered} × 200, refused ${JSON.stringify(paywall.stats.refused)}`);

if (ok) {
  // The audit replays every recorded HTTP answer and payment from the event log: no server needed.
  const v = spawnSync(process.execPath, [BIN, "verify", "--agent", AGENT, "--replay", "--data-dir", dataDir], { encoding: "utf8" });
  for (const line of v.stdout.trim().split("\n")) say("verify", line);
  if (v.status !== 0) {
    say("verify", v.stderr.trim());
    ok = false;
  }
}
rmSync(work, { recursive: true, force: true });
say("demo", ok ? "done: 402 → pay → 200, the receipt refused a second time, the history replays VALID" : `FAILED (${outcome})`);
process.exit(ok ? 0 : 1);
