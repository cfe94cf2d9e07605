// Performs an agent's HTTP request on the main thread with Node's built-in fetch (undici). Reads at
// most `readLimit` body bytes, all within the request's deadline. Redirects are not followed: a 3xx
// is returned to the agent as its status, so every host it reaches passes allowed_hosts and is
// recorded (Go's client follows them past the allowlist).
import type { HttpCall, HttpReply } from "./http.js";

async function readCapped(res: Response, limit: number): Promise<Uint8Array> {
  if (res.body === null) return new Uint8Array(0);
  // A declared length within the limit is read in one go (the common case, and the cheapest).
  const declared = Number(res.headers.get("content-length") ?? NaN);
  if (Number.isSafeInteger(declared) && declared >= 0 && declared < limit) return new Uint8Array(await res.arrayBuffer()).subarray(0, limit);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let n = 0;
  while (n < limit) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    n += value.byteLength;
  }
  if (n >= limit) await reader.cancel().catch(() => undefined);
  const out = new Uint8Array(Math.min(n, limit));
  let off = 0;
  for (const c of chunks) {
    const take = Math.min(c.byteLength, out.byteLength - off);
    out.set(c.subarray(0, take), off);
    off += take;
    if (off === out.byteLength) break;
  }
  return out;
}

export async function performHttp(call: HttpCall): Promise<HttpReply> {
  // One controller and one cleared timer per request: cheaper than AbortSignal.timeout's timer.
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), Math.max(1, call.timeoutMs));
  try {
    const headers: [string, string][] = [];
    // igor's headers are a map: a later line replaces an earlier one with the same name.
    const seen = new Map<string, number>();
    for (const [k, v] of call.headers) {
      const at = seen.get(k.toLowerCase());
      if (at === undefined) {
        seen.set(k.toLowerCase(), headers.length);
        headers.push([k, v]);
      } else headers[at] = [k, v];
    }
    const body = call.body === null ? null : new Uint8Array(call.body);
    const res = await fetch(call.url, { method: call.method, headers, body, redirect: "manual", signal: controller.signal });
    return { kind: "response", status: res.status, body: await readCapped(res, call.readLimit) };
  } catch (e) {
    if (controller.signal.aborted) return { kind: "timeout" };
    const cause = e instanceof Error && e.cause instanceof Error ? `: ${e.cause.message}` : "";
    return { kind: "error", message: `${e instanceof Error ? e.message : String(e)}${cause}` };
  } finally {
    clearTimeout(timer);
  }
}
