// HTTP through the host (capability `http`), with igor's ABI and its Go SDK's buffer policy: an 8 KiB
// response buffer, and on -5 one retry with the size the host hinted (up to 4 MiB). The retry is a
// second request, so it is made only for a request that reads (GET, HEAD): one that acts (POST, PUT,
// DELETE...) is sent once, and its author gives it the room its answer needs (`responseBytes`).
// Every call is one event-log entry, so a replay gets the same status and body without touching the
// network. The status is returned as is: 402 is a result, not an error.

@external("igor", "http_request")
declare function igor_http_request(
  method: usize, methodLen: i32,
  url: usize, urlLen: i32,
  headers: usize, headersLen: i32,
  body: usize, bodyLen: i32,
  resp: usize, respCap: i32,
): i32;

/** -1: transport error (refused connection, not an http(s) URL, an argument outside memory). */
export const HTTP_ERR_TRANSPORT: i32 = -1;
/** -2: method, URL, headers or body over igor's limits (16 B, 8 KiB, 32 KiB, 1 MiB). */
export const HTTP_ERR_INPUT_TOO_LONG: i32 = -2;
/** Host not in allowed_hosts, an address the node has not opened (loopback and private networks are closed unless its operator opens them), or a method other than GET/HEAD without the active owner's authority. */
export const HTTP_ERR_HOST_BLOCKED: i32 = -3;
/** -4: no answer within the manifest's `timeout_ms` (or what is left of the tick timeout). */
export const HTTP_ERR_TIMEOUT: i32 = -4;
/** -5: the body is over `max_response_bytes` or the buffer (the SDK asks again once for a GET or HEAD; a request that acts was sent and answered, and is not sent again). */
export const HTTP_ERR_RESPONSE_TOO_LARGE: i32 = -5;
/** SDK-side: the host claimed a body longer than the buffer it filled. */
export const HTTP_ERR_TRUNCATED: i32 = -100;

/** First response buffer, as igor's SDK: the 4-byte body length, then the body. */
export const HTTP_INITIAL_RESPONSE_BYTES: i32 = 8 * 1024;
/** Room for the body a request's first buffer has unless its caller asks for more (`responseBytes`). */
export const HTTP_DEFAULT_RESPONSE_BYTES: i32 = HTTP_INITIAL_RESPONSE_BYTES - 4;
/** The most room a caller may ask for: the host's largest `max_response_bytes` (8 MiB). */
export const HTTP_MAX_RESPONSE_BYTES: i32 = 8 * 1024 * 1024;
/** Largest body the SDK retries for after a -5 size hint, as igor's SDK. */
export const HTTP_MAX_RETRY_BODY_BYTES: u32 = 4 * 1024 * 1024;

/** The answer to one request: a status and body, or an error code. */
export class HttpResponse {
  /** The HTTP status (> 0) when `error` is 0; every status is a result, 402 included. */
  status: i32;
  /** The response body (empty on error). */
  body: Uint8Array;
  /** 0, or the host's negative code (HTTP_ERR_*). */
  error: i32;

  /** Made by the wrappers. */
  constructor(status: i32, body: Uint8Array, error: i32) {
    this.status = status;
    this.body = body;
    this.error = error;
  }

  /** True when the request was answered (`error` is 0), whatever the status. */
  get ok(): bool {
    return this.error == 0;
  }

  /** The body as UTF-8 text. */
  text(): string {
    return String.UTF8.decodeUnsafe(this.body.dataStart, this.body.length);
  }
}

/** The name of an http_request code, for logs. */
export function httpErrorName(code: i32): string {
  if (code == HTTP_ERR_TRANSPORT) return "transport error";
  if (code == HTTP_ERR_INPUT_TOO_LONG) return "input too long";
  if (code == HTTP_ERR_HOST_BLOCKED) return "refused (host not allowed, or a side effect without authority)";
  if (code == HTTP_ERR_TIMEOUT) return "timeout";
  if (code == HTTP_ERR_RESPONSE_TOO_LARGE) return "response too large";
  if (code == HTTP_ERR_TRUNCATED) return "response truncated";
  return "code " + code.toString();
}

function utf8(s: string): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(s));
}

function ptrOf(b: Uint8Array | null): usize {
  return b === null || b.length == 0 ? 0 : b.dataStart;
}

function lenOf(b: Uint8Array | null): i32 {
  return b === null ? 0 : b.length;
}

function call(method: Uint8Array, url: Uint8Array, headers: Uint8Array | null, body: Uint8Array | null, resp: Uint8Array): i32 {
  return igor_http_request(
    method.dataStart, method.length,
    url.dataStart, url.length,
    ptrOf(headers), lenOf(headers),
    ptrOf(body), lenOf(body),
    resp.dataStart, resp.length,
  );
}

/** Headers as igor's wire wants them: `Key: Value\n` per entry, in insertion order. */
export function headerLines(headers: Map<string, string>): string {
  const keys = headers.keys();
  let out = "";
  for (let i = 0; i < keys.length; i++) {
    out += keys[i] + ": " + headers.get(keys[i]) + "\n";
  }
  return out;
}

/**
 * Whether a request only reads, as the host decides it (GET or HEAD in any case; no method is a GET):
 * only such a request may be sent twice.
 */
function onlyReads(method: string): bool {
  const m = method.toUpperCase();
  return m.length == 0 || m == "GET" || m == "HEAD";
}

/**
 * One HTTP request with headers already as `Key: Value\n` lines ("" for none). Returns the status and
 * body, or `error` < 0. `responseBytes`: room for the body (8 KiB less the 4-byte length by default,
 * at most 8 MiB). A GET or HEAD whose body does not fit (-5) is sent once more with room for the size
 * the host hinted (up to 4 MiB); any other method acts on the world and is never sent again: its -5
 * means the request was sent and answered, and the answer did not fit `responseBytes`.
 */
export function httpRequestLines(method: string, url: string, headers: string, body: Uint8Array | null = null, responseBytes: i32 = HTTP_DEFAULT_RESPONSE_BYTES): HttpResponse {
  const m = utf8(method);
  const u = utf8(url);
  const h: Uint8Array | null = headers.length == 0 ? null : utf8(headers);
  const room = responseBytes < 0 ? 0 : responseBytes > HTTP_MAX_RESPONSE_BYTES ? HTTP_MAX_RESPONSE_BYTES : responseBytes;
  let resp = new Uint8Array(room + 4);
  let rc = call(m, u, h, body, resp);
  if (rc == HTTP_ERR_RESPONSE_TOO_LARGE && onlyReads(method)) {
    const needed = load<u32>(resp.dataStart);
    if (needed > <u32>room && needed <= HTTP_MAX_RETRY_BODY_BYTES) {
      resp = new Uint8Array(<i32>needed + 4);
      rc = call(m, u, h, body, resp);
    }
  }
  if (rc < 0) return new HttpResponse(0, new Uint8Array(0), rc);
  const bodyLen = load<u32>(resp.dataStart);
  if (<u64>bodyLen + 4 > <u64>resp.length) return new HttpResponse(rc, new Uint8Array(0), HTTP_ERR_TRUNCATED);
  return new HttpResponse(rc, resp.slice(4, 4 + <i32>bodyLen), 0);
}

/** One HTTP request; `headers` may be null. See httpRequestLines (`responseBytes`, and which requests are sent again). */
export function httpRequest(
  method: string,
  url: string,
  headers: Map<string, string> | null = null,
  body: Uint8Array | null = null,
  responseBytes: i32 = HTTP_DEFAULT_RESPONSE_BYTES,
): HttpResponse {
  return httpRequestLines(method, url, headers === null ? "" : headerLines(headers), body, responseBytes);
}

/** A GET (an observation: recorded and replayed, never fenced). */
export function httpGet(url: string): HttpResponse {
  return httpRequestLines("GET", url, "", null);
}

/**
 * A POST with a `Content-Type` header (a side effect: only the agent's active owner may). Sent once:
 * an answer longer than `responseBytes` (8 KiB less 4 by default) is -5, not a second POST.
 */
export function httpPost(url: string, contentType: string, body: Uint8Array | null, responseBytes: i32 = HTTP_DEFAULT_RESPONSE_BYTES): HttpResponse {
  return httpRequestLines("POST", url, "Content-Type: " + contentType + "\n", body, responseBytes);
}
