// Builds an agent's import object from its ImportPlan: only the hostcalls it was granted exist.

import { clockNow, dateNow } from "./clock.js";
import type { HostContext } from "./context.js";
import { logEmit, trace } from "./log.js";
import type { ImportPlan } from "./policy.js";
import { nodePrice } from "./pricing.js";
import { randBytes } from "./rand.js";
import { walletBalance, walletReceipt, walletReceiptCount } from "./wallet.js";
import { walletPay } from "./wallet-pay.js";
import { emit } from "./emit.js";
import { httpRequest } from "./http.js";
import { resumeInterrupted } from "./interrupted.js";
import type { WasiHost } from "../wasi/host.js";
import { WASI_MODULE } from "../wasi/preview1.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- WebAssembly import functions are untyped at this boundary.
type HostFn = (...args: any[]) => unknown;

const IGOR: Record<string, (ctx: HostContext, plan: ImportPlan) => HostFn> = {
  clock_now: clockNow,
  rand_bytes: randBytes,
  log_emit: logEmit,
  wallet_balance: walletBalance,
  node_price: nodePrice,
  emit,
  http_request: (ctx, plan) => httpRequest(ctx, plan.http),
  wallet_receipt_count: walletReceiptCount,
  wallet_receipt: walletReceipt,
  wallet_pay: (ctx, plan) => walletPay(ctx, plan.x402),
  resume_interrupted: resumeInterrupted,
};

export function buildImports(
  plan: ImportPlan,
  ctx: HostContext,
  abort: (msg: number, file: number, line: number, col: number) => never,
  memory: WebAssembly.Memory | null,
  wasi: WasiHost | null = null,
): WebAssembly.Imports {
  const igor: Record<string, HostFn> = {};
  for (const name of plan.igor) {
    const make = IGOR[name];
    if (!make) throw new Error(`no implementation for igor.${name}`);
    igor[name] = make(ctx, plan);
  }
  const env: Record<string, HostFn | WebAssembly.Memory> = {};
  for (const name of plan.env) {
    if (name === "abort") env.abort = abort;
    else if (name === "trace") env.trace = trace(ctx);
    else if (name === "Date.now") env["Date.now"] = dateNow(ctx);
  }
  if (plan.importedMemory && memory) env[plan.importedMemory.name] = memory;
  const imports: WebAssembly.Imports = {};
  if (Object.keys(igor).length > 0) imports.igor = igor;
  if (Object.keys(env).length > 0) imports.env = env;
  if (wasi) imports[WASI_MODULE] = wasi.imports();
  return imports;
}
