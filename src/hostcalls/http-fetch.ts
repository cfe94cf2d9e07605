// Performs an agent's HTTP request on the main thread with Node's built-in fetch (undici). Reads at
// most `readLimit` body bytes, all within the request's deadline. Redirects are not followed: a 3xx
// is returned to the agent as its status, so every host it reaches passes allowed_hosts and is
// recorded (Go's client follows them past the allowlist).
import type { HttpCall, HttpReply } from "./http.js";

async function readCapped(res: Response, limit: number): Promise<Uint8Array> {
  if (res.body === null) return new Uint8Array(0);
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
  const signal = AbortSignal.timeout(Math.max(1, call.timeoutMs));
  try {
    const headers = new Headers();
    for (const [k, v] of call.headers) headers.set(k, v);
    const res = await fetch(call.url, { method: call.method, headers, body: call.body === null ? null : new Uint8Array(call.body), redirect: "manual", signal });
    const body = await readCapped(res, call.readLimit);
    return { kind: "response", status: res.status, body };
  } catch (e) {
    if (signal.aborted) return { kind: "timeout" };
    const cause = e instanceof Error && e.cause instanceof Error ? `: ${e.cause.message}` : "";
    return { kind: "error", message: `${e instanceof Error ? e.message : String(e)}${cause}` };
  }
}
