#!/usr/bin/env node
// igor's mock x402 paywall (cmd/paywall), same endpoints and wire format, plus receipt checks.
//
//   GET /api/premium-data
//     no X-Payment header      → 402, body = payment terms [i64 amount][u32 len][recipient][u32 len][memo]
//     X-Payment: hex(receipt)  → 200 {"insight":…,"timestamp":…,"tier":"premium"} when the receipt is
//                                signed by the key inside it, pays exactly the terms and was never used;
//                                else 400 (malformed), 403 (bad signature, wrong terms), 409 (replayed)
//   GET /health → 200 ok
//
// `node scripts/mock/paywall.mjs` listens on PAYWALL_ADDR (default ":8402", as igor's);
// `startPaywall({ port: 0 })` starts one in-process.
import { fileURLToPath } from "node:url";
import { askForPayment, health, httpError, listen, ReceiptChecker, refusePayment, remote, runMain } from "./common.mjs";

export const PAYWALL_DEFAULT_ADDR = ":8402";
export const PAYWALL_TERMS = Object.freeze({ amount: 100_000n, recipient: "paywall-provider", memo: "premium-data-access" });

const INSIGHTS = [
  "BTC dominance rising to 58.3%, altcoin rotation expected",
  "ETH gas fees averaging 12 gwei, L2 adoption accelerating",
  "DeFi TVL crossed $95B, new ATH since 2022",
  "Stablecoin supply expanding, USDC market cap up 15% MoM",
  "On-chain whale activity: 3 wallets accumulated 12,000 BTC this week",
];

/**
 * Starts a paywall. Options: `addr` (Go-style) or `host`/`port`, `log` (one line per request; default
 * silent). Returns { port, close(), stats: { payments402, delivered, refused: {reason: n}, lastAccepted
 * (the last X-Payment header served), accepted (every receipt it accepted, parsed, in order) } }.
 */
export async function startPaywall({ addr, host, port, log = () => {} } = {}) {
  const checker = new ReceiptChecker(PAYWALL_TERMS);
  const stats = { payments402: 0, delivered: 0, refused: {}, lastAccepted: null, accepted: [] };
  const handler = (req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    if (path === "/health") return health(res);
    if (path !== "/api/premium-data") return httpError(res, 404, "404 page not found");
    const payment = req.headers["x-payment"];
    if (typeof payment !== "string" || payment === "") {
      return askForPayment("paywall", req, res, PAYWALL_TERMS, stats, log);
    }
    const verdict = checker.check(payment);
    if (!verdict.ok) {
      return refusePayment("paywall", req, res, verdict, stats, log);
    }
    stats.delivered++;
    stats.lastAccepted = payment;
    stats.accepted.push(verdict.receipt);
    log(`[paywall] 200 → ${remote(req)} (payment received, ${payment.length} bytes, ${verdict.receipt.amount} µ¢ from key ${verdict.receipt.publicKey.toString("hex").slice(0, 16)}…)`);
    const insight = INSIGHTS[Math.floor(Math.random() * INSIGHTS.length)];
    res.writeHead(200, { "Content-Type": "application/octet-stream" });
    res.end(JSON.stringify({ insight, timestamp: Math.floor(Date.now() / 1000), tier: "premium" }));
  };
  const srv = await listen("paywall", handler, { addr, host, port, log });
  return { ...srv, stats };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await runMain("paywall", startPaywall, "PAYWALL_ADDR", PAYWALL_DEFAULT_ADDR);
}
