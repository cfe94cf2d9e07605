// Exactly-once payments across crashes: a real igord process running an AssemblyScript agent that
// pays a local paywall with the EffectLog pattern is SIGKILLed after the paywall accepted the
// payment and before any checkpoint covers it. Restarted, the agent learns (resume_interrupted,
// recorded) that it was interrupted, reconciles its InFlight intent instead of paying again, and
// the paywall has accepted exactly one payment. The history then audits VALID by replay. The payment
// journal debits the lost tick's payment from the budget exactly once at that restart (a signed
// lost_payment lineage event that verify counts); a clean run journals and settles, never debits twice.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { formatUnits } from "../../src/budget/money.js";
import { publicKeyFromDid } from "../../src/identity/did.js";
import { HostcallId } from "../../src/hostcalls/registry.js";
import { decodePaymentReceipt, verifyPaymentReceipt } from "../../src/hostcalls/wallet-pay.js";
import { DB_FILE, SqliteStore } from "../../src/store/sqlite-store.js";
import { decodeSegment } from "../../src/eventlog/tick-log.js";
import { AS_FIXTURES, tempDir } from "../helpers/node.js";
import { igord, killAll, startDaemon, type Daemon } from "../helpers/process.js";
import { startServer, type TestServer } from "../helpers/http-agent.js";

const servers: TestServer[] = [];
afterEach(async () => {
  killAll();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

const PLACEHOLDER = "http://127.0.0.1:11111";
const AMOUNT = 100_000n;
const RECIPIENT = "paywall-provider";
const MEMO = "premium-data-access";

/** The fixture with its base URL pointed at `port` (the placeholder is UTF-16 in its data segment). */
function payerFor(port: number): Uint8Array {
  const wasm = Buffer.from(readFileSync(join(AS_FIXTURES, "x402payer.wasm")));
  const from = Buffer.from(PLACEHOLDER, "utf16le");
  const to = Buffer.from(`http://127.0.0.1:${String(port).padStart(5, "0")}`, "utf16le");
  const at = wasm.indexOf(from);
  if (at < 0 || wasm.indexOf(from, at + 1) >= 0) throw new Error("placeholder URL not found exactly once in x402payer.wasm");
  to.copy(wasm, at);
  return wasm;
}

function terms(): Uint8Array {
  const r = Buffer.from(RECIPIENT);
  const m = Buffer.from(MEMO);
  const out = Buffer.alloc(16 + r.length + m.length);
  out.writeBigInt64LE(AMOUNT, 0);
  out.writeUInt32LE(r.length, 8);
  r.copy(out, 12);
  out.writeUInt32LE(m.length, 12 + r.length);
  m.copy(out, 16 + r.length);
  return out;
}

const BUDGET = 1_000_000n; // --budget 1.0

interface Paywall {
  accepted: string[];
  rejected: string[];
  args: string[];
  dataDir: string;
  start(): Daemon;
}

/**
 * A paywall on a loopback port and an agents dir holding the payer pointed at it. With `powerCut`,
 * the first accepted payment SIGKILLs the daemon before it can checkpoint the paying tick.
 */
async function paywallAndPayer(powerCut: boolean): Promise<Paywall> {
  const root = tempDir();
  const agentsDir = join(root, "agents");
  const dataDir = join(root, "data");
  mkdirSync(agentsDir);
  let daemon: Daemon | null = null;
  let did: string | null = null;
  const accepted: string[] = [];
  const seenReceipts = new Set<string>();
  const rejected: string[] = [];
  /** The intent is covered by a checkpoint: the agent may act. */
  const intentCheckpointed = (d: Daemon): boolean => {
    const rec = d.lines.find((l) => l.event === "agent_log" && l.msg === "intent recorded");
    if (!rec) return false;
    return d.lines.some((l) => l.event === "checkpoint_saved" && l.agent === "payer" && BigInt(l.tick as string) >= BigInt(rec.tick as string));
  };
  const paywall = await startServer((req, res) => {
    const intent = String(req.headers["x-intent"] ?? "");
    if (req.url === "/terms") {
      res.statusCode = 402;
      res.end(terms());
    } else if (req.url === "/go") {
      res.end(daemon && intentCheckpointed(daemon) ? "go" : "wait");
    } else if (req.url === "/pay") {
      // What igor's paywall does not check: the signature, the key (the agent's DID), the terms, reuse.
      const receipt = Buffer.from(String(req.headers["x-payment"] ?? ""), "hex");
      const r = decodePaymentReceipt(receipt);
      const ok = r !== null && verifyPaymentReceipt(receipt) && did !== null && Buffer.from(r.publicKey).equals(Buffer.from(publicKeyFromDid(did)))
        && r.amount === AMOUNT && r.recipient === RECIPIENT && r.memo === MEMO && !seenReceipts.has(receipt.toString("hex"));
      if (!ok) {
        rejected.push(intent);
        res.statusCode = 400;
        res.end("bad receipt");
        return;
      }
      seenReceipts.add(receipt.toString("hex"));
      accepted.push(intent);
      // The power cut: after the provider took the money, before igord could checkpoint the tick.
      if (powerCut && accepted.length === 1) daemon?.child.kill("SIGKILL");
      res.end("ok");
    } else if (req.url === "/reconcile") {
      res.end(accepted.includes(intent) ? "paid" : "unpaid");
    } else {
      res.statusCode = 404;
      res.end();
    }
  });
  servers.push(paywall);
  writeFileSync(join(agentsDir, "payer.wasm"), payerFor(paywall.port));
  writeFileSync(join(agentsDir, "payer.manifest.json"), JSON.stringify({
    capabilities: {
      log: { version: 1 },
      http: { version: 1, options: { allowed_hosts: ["127.0.0.1"], timeout_ms: 5000 } },
      x402: { version: 1, options: { allowed_recipients: [RECIPIENT], max_payment_microcents: 1_000_000 } },
    },
  }));
  // Every checkpoint carries a node receipt, so what execution cost is on record to the microcent.
  const args = ["--agents-dir", agentsDir, "--data-dir", dataDir, "--control", "off", "--tick-interval", "20ms", "--checkpoint-interval", "50ms", "--receipt-interval", "0", "--budget", "1.0", "--log-level", "debug", "--http-private-networks", "127.0.0.0/8"];
  return {
    accepted,
    rejected,
    args,
    dataDir,
    start: () => {
      daemon = startDaemon(args);
      void daemon.waitFor((l) => l.event === "agent_started" && l.agent === "payer").then((l) => {
        did = l.did as string;
      });
      return daemon;
    },
  };
}

async function stop(d: Daemon): Promise<void> {
  d.child.kill("SIGINT");
  expect(await d.exit).toBe(0);
}

/** What the node's receipts charged the agent: execution plus the payments of committed ticks. */
const charged = (s: SqliteStore): bigint => s.receipts("payer").reduce((sum, r) => sum + r.cost, 0n);

function stored<T>(dataDir: string, f: (store: SqliteStore) => T): T {
  const store = SqliteStore.open(join(dataDir, DB_FILE), { readonly: true });
  try {
    return f(store);
  } finally {
    store.close();
  }
}

describe("exactly-once payments", () => {
  it("an agent SIGKILLed between its payment and the checkpoint that would cover it pays exactly once after the restart", { timeout: 60_000 }, async () => {
    const p = await paywallAndPayer(true);
    const first = p.start();
    expect(await first.exit).not.toBe(0);
    expect(p.accepted).toEqual(["pay-1"]);
    expect(first.lines.some((l) => l.event === "agent_log" && l.msg === "paid")).toBe(false);
    // The receipt was journalled before the agent had it, and no checkpoint settled it.
    const journalled = stored(p.dataDir, (s) => s.unsettledPayments("payer"));
    expect(journalled.map((j) => [j.amount, j.recipient, j.memo])).toEqual([[AMOUNT, RECIPIENT, MEMO]]);
    const lostHead = stored(p.dataDir, (s) => s.head("payer")!);
    expect(journalled[0]!.tick).toBeGreaterThan(lostHead.tick);

    // Restart: the head is a periodic checkpoint, so ticks may have run after it (they did: the payment).
    const daemon = p.start();
    const debited = await daemon.waitFor((l) => l.event === "lost_payment_debited" && l.agent === "payer");
    expect(debited.amount).toBe(String(AMOUNT));
    expect(BigInt(debited.oldBudget as string) - BigInt(debited.newBudget as string)).toBe(AMOUNT);
    const settled = await daemon.waitFor((l) => l.event === "agent_log" && typeof l.msg === "string" && l.msg.startsWith("reconciled"));
    expect(settled.msg).toBe("reconciled: paid already");
    // Debited before the agent's first tick here.
    expect(daemon.lines.findIndex((l) => l === debited)).toBeLessThan(daemon.lines.findIndex((l) => l.event === "agent_started" && l.agent === "payer"));
    await daemon.waitFor((l) => l.event === "checkpoint_saved" && l.agent === "payer" && BigInt(l.tick as string) > BigInt(settled.tick as string));
    await stop(daemon);
    expect(p.accepted).toEqual(["pay-1"]);
    expect(p.rejected).toEqual([]);

    // The budget lost the one payment, exactly once, besides execution; the journal is empty.
    stored(p.dataDir, (s) => {
      expect(s.head("payer")!.budget).toBe(BUDGET - AMOUNT - charged(s));
      expect(charged(s)).toBeLessThan(AMOUNT); // execution only: the lost tick's payment is in no receipt
      expect(s.unsettledPayments("payer")).toEqual([]);
      expect(s.lineageEvents("payer").filter((e) => e.kind === "lost_payment")).toHaveLength(1);
      // The restarted instance's first tick asked, and was told 1; that answer is in its event log.
      const asked = s.eventSegments("payer").flatMap((seg) => decodeSegment(seg.blob)).flatMap((log) => log.entries.filter((e) => e.id === HostcallId.resume_interrupted).map((e) => e.result));
      expect(asked).toContain(1);
      expect(asked.filter((r) => r === 1)).toHaveLength(1);
    });
    // A further restart debits nothing again.
    const again = p.start();
    await again.waitFor((l) => l.event === "agent_started" && l.agent === "payer");
    await stop(again);
    expect(again.lines.some((l) => l.event === "lost_payment_debited")).toBe(false);
    stored(p.dataDir, (s) => expect(s.head("payer")!.budget).toBe(BUDGET - AMOUNT - charged(s)));

    // Replay re-executes those ticks, the interruption answer and the reconciliation included; the
    // lost payment is accounted for by its signed lineage event.
    const audit = igord(["verify", "--agent", "payer", "--replay", "--data-dir", p.dataDir]);
    expect(audit.stdout).toMatch(/^VALID/);
    expect(audit.stdout).toMatch(/replay: VALID/);
    expect(audit.stdout).toContain(`payments: 1, ${AMOUNT} µ¢ (${formatUnits(AMOUNT)}) (1 of them, ${AMOUNT} µ¢, paid in runs that never committed, debited as lost payments)`);
    expect(audit.status).toBe(0);
  });

  it("a clean run journals its payment, settles it with the checkpoint and never debits it twice", { timeout: 60_000 }, async () => {
    const p = await paywallAndPayer(false);
    const d = p.start();
    const paid = await d.waitFor((l) => l.event === "agent_log" && l.msg === "paid");
    await d.waitFor((l) => l.event === "checkpoint_saved" && l.agent === "payer" && BigInt(l.tick as string) >= BigInt(paid.tick as string));
    await stop(d);
    expect(p.accepted).toEqual(["pay-1"]);
    stored(p.dataDir, (s) => {
      expect(s.unsettledPayments("payer")).toEqual([]);
      // The receipts charged the payment once, with execution.
      expect(s.head("payer")!.budget).toBe(BUDGET - charged(s));
      expect(charged(s) - AMOUNT).toBeGreaterThanOrEqual(0n);
      expect(charged(s) - AMOUNT).toBeLessThan(AMOUNT);
    });
    const again = p.start();
    await again.waitFor((l) => l.event === "agent_started" && l.agent === "payer");
    await again.waitFor((l) => l.event === "checkpoint_saved" && l.agent === "payer");
    await stop(again);
    expect(again.lines.some((l) => l.event === "lost_payment_debited")).toBe(false);
    stored(p.dataDir, (s) => {
      expect(s.head("payer")!.budget).toBe(BUDGET - charged(s));
      expect(charged(s) - AMOUNT).toBeLessThan(AMOUNT);
      expect(s.lineageEvents("payer").filter((e) => e.kind === "lost_payment")).toEqual([]);
    });
    const audit = igord(["verify", "--agent", "payer", "--data-dir", p.dataDir]);
    expect(audit.stdout).toMatch(/^VALID/);
    expect(audit.stdout).toContain(`payments: 1, ${AMOUNT} µ¢ (${formatUnits(AMOUNT)}), each receipt`);
  });
});
