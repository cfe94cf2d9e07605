#!/usr/bin/env node
// igor's mock compute provider (cmd/mockcloud), same endpoints and wire formats, plus receipt checks.
//
//   GET  /health                    → 200 ok
//   POST /v1/deploy                 no X-Payment → 402 with terms [i64 amount][u32][recipient][u32][memo];
//                                   with a valid, unused receipt for the terms and a JSON body
//                                   {"wasm_hash","budget_offer"} → 201 {"deployment_id":"dep-NNNN",…}
//   GET  /v1/deploy/{id}            status advances pending → provisioning → running, one step per query
//   POST /v1/deploy/{id}/terminate  → 200, status "terminated"
//
// `node scripts/mock/mockcloud.mjs` listens on MOCKCLOUD_ADDR (default ":8500", as igor's);
// `startMockcloud({ port: 0 })` starts one in-process.
import { fileURLToPath } from "node:url";
import { askForPayment, health, httpError, listen, ReceiptChecker, refusePayment, remote, runMain } from "./common.mjs";

export const MOCKCLOUD_DEFAULT_ADDR = ":8500";
export const MOCKCLOUD_TERMS = Object.freeze({ amount: 500_000n, recipient: "mockcloud-provider", memo: "compute-deployment" });
/** Largest deploy request body read. */
export const MAX_DEPLOY_BODY_BYTES = 64 * 1024;

// Go's json.Encoder: compact JSON and a newline; unexported fields (the query count) stay out.
function sendJSON(res, status, dep) {
  res.writeHead(status, { "Content-Type": "application/json" });
  res.end(`${JSON.stringify({ deployment_id: dep.id, wasm_hash: dep.wasmHash, status: dep.status })}\n`);
}

function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on("data", (c) => {
      size += c.length;
      if (size > limit) {
        reject(new Error("request body too large"));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

/**
 * Starts a mock compute provider. Options as startPaywall. Returns { port, close(), deployments (Map
 * id → {id, wasmHash, status, queries, budgetOffer}), stats: { payments402, refused: {reason: n} } }.
 */
export async function startMockcloud({ addr, host, port, log = () => {} } = {}) {
  const checker = new ReceiptChecker(MOCKCLOUD_TERMS);
  const deployments = new Map();
  const stats = { payments402: 0, refused: {} };
  let counter = 0;

  async function deploy(req, res) {
    const payment = req.headers["x-payment"];
    if (typeof payment !== "string" || payment === "") {
      return askForPayment("mockcloud", req, res, MOCKCLOUD_TERMS, stats, log);
    }
    let body;
    try {
      body = JSON.parse((await readBody(req, MAX_DEPLOY_BODY_BYTES)).toString("utf8"));
    } catch {
      return httpError(res, 400, "invalid request body");
    }
    if (body === null || typeof body !== "object") return httpError(res, 400, "invalid request body");
    // The receipt is spent only by a request that can deploy: a bad body does not burn it.
    const verdict = checker.check(payment);
    if (!verdict.ok) {
      return refusePayment("mockcloud", req, res, verdict, stats, log);
    }
    counter++;
    const id = `dep-${String(counter).padStart(4, "0")}`;
    const dep = {
      id,
      wasmHash: typeof body.wasm_hash === "string" ? body.wasm_hash : "",
      budgetOffer: typeof body.budget_offer === "number" ? body.budget_offer : 0,
      status: "pending",
      queries: 0,
    };
    deployments.set(id, dep);
    log(`[mockcloud] 201 → ${remote(req)} deployment=${id} wasm=${dep.wasmHash} budget=${dep.budgetOffer}`);
    sendJSON(res, 201, dep);
  }

  function byId(req, res, rest) {
    const [id, action] = rest.split(/\/(.*)/s);
    if (!id) return httpError(res, 400, "missing deployment id");
    const dep = deployments.get(id);
    if (!dep) return httpError(res, 404, "deployment not found");
    if (action === "terminate" && req.method === "POST") {
      dep.status = "terminated";
      log(`[mockcloud] TERMINATED deployment=${id}`);
      return sendJSON(res, 200, dep);
    }
    if (req.method !== "GET") return httpError(res, 405, "method not allowed");
    dep.queries++;
    dep.status = dep.queries <= 1 ? "pending" : dep.queries <= 2 ? "provisioning" : "running";
    log(`[mockcloud] STATUS deployment=${id} status=${dep.status} query=${dep.queries}`);
    sendJSON(res, 200, dep);
  }

  const handler = (req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    if (path === "/health") return health(res);
    if (path === "/v1/deploy") {
      if (req.method !== "POST") return httpError(res, 405, "method not allowed");
      deploy(req, res).catch((e) => {
        log(`[mockcloud] deploy error: ${e instanceof Error ? e.message : String(e)}`);
        if (!res.headersSent) httpError(res, 400, "invalid request body");
      });
      return;
    }
    if (path.startsWith("/v1/deploy/")) return byId(req, res, path.slice("/v1/deploy/".length));
    httpError(res, 404, "404 page not found");
  };
  const srv = await listen("mockcloud", handler, { addr, host, port, log });
  return { ...srv, deployments, stats };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await runMain("mockcloud", startMockcloud, "MOCKCLOUD_ADDR", MOCKCLOUD_DEFAULT_ADDR);
}
