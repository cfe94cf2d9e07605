// Performs an agent's HTTP request on the main thread with node:http / node:https. Reads at most
// `readLimit` body bytes, all within the request's deadline. Redirects are not followed: a 3xx is
// returned to the agent as its status, so every host it reaches passes allowed_hosts and is
// recorded (Go's client follows them past the allowlist). Every connection goes to an address the
// node's DestinationPolicy allows (http-destination.ts): checked for an IP literal before the request,
// and inside the socket's own DNS lookup for a name. Sockets are kept alive and reused per host.
import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions, type LookupOneOptions } from "node:dns";
import { Agent as HttpAgent, type ClientRequest, type IncomingMessage, request as httpRequest } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { isIP, type LookupFunction } from "node:net";
import { isIgordError, ErrorCode } from "../errors.js";
import { type DestinationPolicy, refusal } from "./http-destination.js";
import type { HttpCall, HttpReply } from "./http.js";

/**
 * Headers the node sets, never the agent (Go's net/http, igor's client, ignores the first four too):
 * the request's framing and its connection are the node's, and a connection is kept alive for the
 * next request of any agent. A GET's body (which Node sends unframed), or one under an agent's
 * Content-Length: 0, was read as a second request (a POST, sent by a run without the owner's
 * authority), and an agent's Host reached, through a shared server, a site allowed_hosts did not name.
 */
const NODE_HEADERS = new Set(["host", "content-length", "transfer-encoding", "trailer", "connection", "keep-alive", "proxy-connection", "upgrade", "te"]);

/** Idle kept-alive sockets per host, and how long one waits for the next request. */
const KEEP_ALIVE_SOCKETS_PER_HOST = 16;
const KEEP_ALIVE_IDLE_MS = 5_000;

export interface HttpClient {
  perform(call: HttpCall): Promise<HttpReply>;
  /** Closes the kept-alive sockets (node stop). */
  close(): void;
}

/** A DNS lookup that answers only the addresses `policy` allows (an error naming the address when none is). */
function guardedLookup(policy: DestinationPolicy): LookupFunction {
  return ((hostname: string, options: LookupOneOptions | LookupAllOptions, callback: (err: Error | null, address: string | LookupAddress[], family?: number) => void) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, "");
      const ok = addresses.filter((a) => policy.allows(a.address));
      if (ok.length === 0) return callback(refusal(hostname, addresses[0]?.address ?? "no address"), "");
      if (options.all) callback(null, ok);
      else callback(null, ok[0]!.address, ok[0]!.family);
    });
  }) as LookupFunction;
}

function readCapped(res: IncomingMessage, limit: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    res.on("data", (c: Buffer) => {
      chunks.push(c);
      n += c.length;
      if (n >= limit) {
        // One byte past max_response_bytes is enough to know it is too large.
        res.destroy();
        resolve(new Uint8Array(Buffer.concat(chunks, n).subarray(0, limit)));
      }
    });
    res.on("end", () => resolve(new Uint8Array(Buffer.concat(chunks, n))));
    res.on("error", reject);
    res.on("close", () => reject(new Error("the response ended early")));
  });
}

export function createHttpClient(policy: DestinationPolicy): HttpClient {
  const lookup = guardedLookup(policy);
  const agentOptions = { keepAlive: true, maxFreeSockets: KEEP_ALIVE_SOCKETS_PER_HOST, timeout: KEEP_ALIVE_IDLE_MS, lookup };
  const http = new HttpAgent(agentOptions);
  const https = new HttpsAgent(agentOptions);

  const perform = async (call: HttpCall): Promise<HttpReply> => {
    let req: ClientRequest | undefined;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      req?.destroy();
    }, Math.max(1, call.timeoutMs));
    try {
      const url = new URL(call.url);
      if (url.protocol !== "http:" && url.protocol !== "https:") return { kind: "error", message: `${url.protocol} is not http or https` };
      const literal = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
      // A socket connects to an IP literal without a lookup: checked here.
      if (isIP(literal) !== 0) policy.check(url.hostname, literal);
      // igor's headers are a map: a later line replaces an earlier one with the same name.
      const headers: Record<string, string> = {};
      const names = new Map<string, string>();
      for (const [k, v] of call.headers) {
        if (NODE_HEADERS.has(k.toLowerCase())) continue;
        const seen = names.get(k.toLowerCase());
        if (seen !== undefined) delete headers[seen];
        names.set(k.toLowerCase(), k);
        headers[k] = v;
      }
      // Node frames no body of a GET, HEAD, DELETE or OPTIONS by itself: sent bare, it would be read
      // as the next request on the connection. Its length, always.
      if (call.body !== null) headers["content-length"] = String(call.body.length);
      const send = url.protocol === "https:" ? httpsRequest : httpRequest;
      const res = await new Promise<IncomingMessage>((resolve, reject) => {
        req = send(url, { method: call.method, headers, agent: url.protocol === "https:" ? https : http, lookup }, resolve);
        req.on("error", reject);
        if (timedOut) req.destroy();
        req.end(call.body === null ? undefined : Buffer.from(call.body.buffer, call.body.byteOffset, call.body.length));
      });
      return { kind: "response", status: res.statusCode ?? 0, body: await readCapped(res, call.readLimit) };
    } catch (e) {
      if (isIgordError(e) && e.code === ErrorCode.HttpDestinationRefused) return { kind: "refused", message: e.message };
      if (timedOut) return { kind: "timeout" };
      return { kind: "error", message: e instanceof Error ? e.message : String(e) };
    } finally {
      clearTimeout(timer);
    }
  };

  return {
    perform,
    close: () => {
      http.destroy();
      https.destroy();
    },
  };
}
