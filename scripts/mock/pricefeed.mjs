#!/usr/bin/env node
// A local stand-in for the one CoinGecko endpoint igor's pricewatcher reads (igor ships no mock for it):
//
//   GET /api/v3/simple/price?ids=bitcoin,ethereum&vs_currencies=usd
//     → 200 {"bitcoin":{"usd":83456.78},"ethereum":{"usd":1923.45}}   (CoinGecko's format)
//   GET /health → 200 ok
//
// Prices take a small random step per request. `node scripts/mock/pricefeed.mjs` listens on
// PRICEFEED_ADDR (default ":8600"); `startPricefeed({ port: 0 })` starts one in-process.
import { fileURLToPath } from "node:url";
import { health, httpError, listen, remote, runMain } from "./common.mjs";

export const PRICEFEED_DEFAULT_ADDR = ":8600";
const START_CENTS = { bitcoin: 8_345_678, ethereum: 192_345 };
/** Largest step per request, in basis points of the price. */
const STEP_BP = 50;

/** Starts a price feed. `prices` (cents per coin) can be read and set by a test. */
export async function startPricefeed({ addr, host, port, log = () => {} } = {}) {
  const prices = { ...START_CENTS };
  let requests = 0;
  const handler = (req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname === "/health") return health(res);
    if (url.pathname !== "/api/v3/simple/price") return httpError(res, 404, "404 page not found");
    const ids = (url.searchParams.get("ids") ?? "").split(",").filter((id) => id in prices);
    if (url.searchParams.get("vs_currencies") !== "usd" || ids.length === 0) {
      return httpError(res, 400, "ids (bitcoin, ethereum) and vs_currencies=usd are required");
    }
    requests++;
    const out = {};
    for (const id of ids) {
      if (requests > 1) {
        const step = Math.round((prices[id] * (Math.random() * 2 - 1) * STEP_BP) / 10_000);
        prices[id] = Math.max(1, prices[id] + step);
      }
      out[id] = { usd: prices[id] / 100 };
    }
    log(`[pricefeed] 200 → ${remote(req)} ${ids.map((id) => `${id}=${prices[id] / 100}`).join(" ")}`);
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify(out));
  };
  const srv = await listen("pricefeed", handler, { addr, host, port, log });
  return { ...srv, prices, requests: () => requests };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await runMain("pricefeed", startPricefeed, "PRICEFEED_ADDR", PRICEFEED_DEFAULT_ADDR);
}
