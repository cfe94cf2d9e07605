// The local admin API: JSON over HTTP on --control, every route behind the bearer token.
import { timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { Logger } from "pino";
import type { HostPort } from "../config/units.js";
import { ErrorCode, IgordError, isIgordError } from "../errors.js";
import { DASHBOARD_HTML, DASHBOARD_JS } from "./dashboard-page.js";
import { hostRefusal } from "./host-check.js";
import type { agentJson } from "./json.js";
import { controlProof, PROOF_NONCE_RE, PROOF_PATH } from "./proof.js";
import { DashboardSessions, sessionFromHeader } from "./sessions.js";

/** Request bodies above this are refused. */
export const MAX_CONTROL_BODY_BYTES = 64 * 1024;
/**
 * Connections the control port holds at once (new ones past it are closed), and how long one may take
 * to send a request's headers: any local caller can connect without the token, and idle sockets
 * must not take the file descriptors the node's agents, libp2p and store need.
 */
export const MAX_CONTROL_CONNECTIONS = 128;
export const CONTROL_HEADERS_TIMEOUT_MS = 10_000;
/**
 * How long a whole request, headers and body, may take to arrive (Node's default is 300 s: a caller
 * trickling a body would hold its connection that long), and how often Node checks both timeouts
 * (default 30 s). A body is at most MAX_CONTROL_BODY_BYTES from a local caller.
 */
export const CONTROL_REQUEST_TIMEOUT_MS = 10_000;
const CONTROL_TIMEOUT_CHECK_MS = 1_000;

export interface ControlBackend {
  status(): Record<string, unknown>;
  /** Every agent this node knows of; with `all`, also the ones that moved away (retired here). */
  agents(opts?: { all?: boolean }): Record<string, unknown>[] | ReturnType<typeof agentJson>[];
  agent(id: string): Record<string, unknown> | undefined;
  metrics(): Promise<{ contentType: string; body: string }>;
  setCapabilities(caps: string[]): string[];
  /** Starts a stored agent now (after an import or a recovery). */
  resume(id: string): Promise<Record<string, unknown>>;
  /** igord stop / start / remove (node/agent-lifecycle.ts has the rules). */
  stop(id: string): Promise<Record<string, unknown>>;
  start(id: string): Promise<Record<string, unknown>>;
  remove(id: string): Promise<Record<string, unknown>>;
  /** igord upgrade: the module at `wasmPath` (on the daemon's machine) continues from the agent's checkpoint. */
  upgrade(id: string, wasmPath: string): Promise<Record<string, unknown>>;
  /** Migrates a running agent; resolves with the outcome. */
  migrate(id: string, targets: string[]): Promise<Record<string, unknown>>;
  peers(): Record<string, unknown>;
  /**
   * A page of the agent's published messages (the emit side effect), oldest first, after a tick, and
   * `keptFromTick`: every message of a tick from it on is still stored (a reader whose `after` + 1 is
   * below it missed messages).
   */
  outbox(id: string, afterTick?: string): { messages: Record<string, unknown>[]; keptFromTick: string };
  migrations(agentId?: string): Record<string, unknown>[];
  /** One agent's history for the dashboard: checkpoints, receipts, migrations, lineage records, divergences. */
  timeline(id: string): Record<string, unknown>;
}

export interface ControlServer {
  address: HostPort;
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  // A refused request's body may still be arriving (or trickling): close the connection once
  // answered, rather than read the rest of it.
  res.setHeader("connection", "close");
  send(res, status, { error: { code, message } });
}

function authorized(req: IncomingMessage, token: Buffer): boolean {
  const h = req.headers.authorization ?? "";
  const m = /^Bearer (.+)$/.exec(h);
  if (!m) return false;
  const given = Buffer.from(m[1] ?? "");
  return given.length === token.length && timingSafeEqual(given, token);
}

/** Largest tick a query may name (ticks are u64 in checkpoints; SQLite binds signed 64-bit). */
const MAX_QUERY_TICK = 2n ** 63n - 1n;

function badRequest(message: string): IgordError {
  return new IgordError(ErrorCode.ControlBadRequest, message);
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const tooLarge = () =>
    new IgordError(ErrorCode.ControlBodyTooLarge, `request body above ${MAX_CONTROL_BODY_BYTES} bytes`);
  if (Number(req.headers["content-length"] ?? 0) > MAX_CONTROL_BODY_BYTES) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_CONTROL_BODY_BYTES) throw tooLarge();
    chunks.push(c as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw badRequest("request body is not valid JSON");
  }
}

/** A JSON object body; `null`, arrays and bare values are refused. */
async function readObject(req: IncomingMessage, shape: string): Promise<Record<string, unknown>> {
  const body = await readBody(req);
  if (body === null || typeof body !== "object" || Array.isArray(body)) throw badRequest(`body must be a JSON object: ${shape}`);
  return body as Record<string, unknown>;
}

function decodeSegment(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw badRequest(`"${text}" in the path is not valid percent-encoding`);
  }
}

function tickQuery(url: URL, name: string): string | undefined {
  const v = url.searchParams.get(name);
  if (v === null) return undefined;
  if (!/^\d{1,20}$/.test(v) || BigInt(v) > MAX_QUERY_TICK) throw badRequest(`"${name}" must be a tick number from 0 to ${MAX_QUERY_TICK}, got "${v}"`);
  return v;
}

function targetList(v: unknown, name: string): string[] {
  if (v === undefined || v === null) return [];
  if (typeof v === "string") return [v];
  if (Array.isArray(v) && v.every((x) => typeof x === "string")) return v as string[];
  throw badRequest(`"${name}" must be a multiaddr or peer id, or an array of them`);
}

interface Route {
  method: "GET" | "POST" | "PUT";
  /** Anchored; capture groups are %-decoded path segments. */
  path: RegExp;
  handle: (req: IncomingMessage, res: ServerResponse, params: string[], url: URL) => Promise<void> | void;
}

function routes(backend: ControlBackend, sessions: DashboardSessions, origin: () => string): Route[] {
  return [
    {
      // A one-time login link for the dashboard (bearer token only: a session cannot mint another).
      method: "POST",
      path: /^\/v1\/dashboard\/login$/,
      handle: (_q, res) => send(res, 200, { url: `${origin()}/login?code=${sessions.issueCode()}` }),
    },
    { method: "GET", path: /^\/v1\/status$/, handle: (_q, res) => send(res, 200, backend.status()) },
    { method: "GET", path: /^\/v1\/agents$/, handle: (_q, res, _p, url) => send(res, 200, { agents: backend.agents({ all: url.searchParams.get("all") === "1" }) }) },
    {
      method: "GET",
      path: /^\/v1\/agents\/([^/]+)$/,
      handle: (_q, res, [id = ""]) => {
        const a = backend.agent(id);
        if (!a) return sendError(res, 404, ErrorCode.AgentNotFound, `no agent "${id}" on this node`);
        send(res, 200, a);
      },
    },
    { method: "POST", path: /^\/v1\/agents\/([^/]+)\/resume$/, handle: async (_q, res, [id = ""]) => send(res, 200, await backend.resume(id)) },
    { method: "POST", path: /^\/v1\/agents\/([^/]+)\/stop$/, handle: async (_q, res, [id = ""]) => send(res, 200, await backend.stop(id)) },
    { method: "POST", path: /^\/v1\/agents\/([^/]+)\/start$/, handle: async (_q, res, [id = ""]) => send(res, 200, await backend.start(id)) },
    { method: "POST", path: /^\/v1\/agents\/([^/]+)\/remove$/, handle: async (_q, res, [id = ""]) => send(res, 200, await backend.remove(id)) },
    {
      method: "POST",
      path: /^\/v1\/agents\/([^/]+)\/upgrade$/,
      handle: async (req, res, [id = ""]) => {
        const body = await readObject(req, '{"wasm": "/absolute/path/new.wasm"}');
        if (typeof body.wasm !== "string" || body.wasm === "") throw badRequest('"wasm" must be the path of the new module');
        send(res, 200, await backend.upgrade(id, body.wasm));
      },
    },
    {
      method: "POST",
      path: /^\/v1\/agents\/([^/]+)\/migrate$/,
      handle: async (req, res, [id = ""]) => {
        const body = await readObject(req, '{"to": "<multiaddr|peer-id>", "fallback": [...]}');
        const to = targetList(body.to, "to");
        const fallback = targetList(body.fallback, "fallback");
        if (fallback.length > 0 && to.length === 0) throw badRequest('"fallback" needs a "to" target first');
        send(res, 200, await backend.migrate(id, [...to, ...fallback]));
      },
    },
    {
      method: "GET",
      path: /^\/v1\/agents\/([^/]+)\/outbox$/,
      handle: (_q, res, [id = ""], url) => send(res, 200, backend.outbox(id, tickQuery(url, "after"))),
    },
    { method: "GET", path: /^\/v1\/agents\/([^/]+)\/timeline$/, handle: (_q, res, [id = ""]) => send(res, 200, backend.timeline(id)) },
    { method: "GET", path: /^\/v1\/peers$/, handle: (_q, res) => send(res, 200, backend.peers()) },
    {
      method: "GET",
      path: /^\/v1\/migrations$/,
      handle: (_q, res, _p, url) => send(res, 200, { migrations: backend.migrations(url.searchParams.get("agent") ?? undefined) }),
    },
    {
      method: "PUT",
      path: /^\/v1\/capabilities$/,
      handle: async (req, res) => {
        const shape = '{"capabilities": ["clock", ...]}';
        const body = await readObject(req, shape);
        if (!Array.isArray(body.capabilities) || body.capabilities.some((c) => typeof c !== "string")) throw badRequest(`body must be ${shape}`);
        send(res, 200, { capabilities: backend.setCapabilities(body.capabilities as string[]) });
      },
    },
    {
      method: "GET",
      path: /^\/metrics$/,
      handle: async (_q, res) => {
        const m = await backend.metrics();
        res.writeHead(200, { "content-type": m.contentType });
        res.end(m.body);
      },
    },
  ];
}

/** Headers of every dashboard response: no framing, no foreign scripts, nothing cached. */
const PAGE_HEADERS = {
  "content-security-policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
  "x-frame-options": "DENY",
  "cache-control": "no-store",
  "referrer-policy": "no-referrer",
};

/** The page and its script: no data of the node in them (the script asks for it with a session). */
function page(res: ServerResponse, which: "/" | "/dashboard.js", html = DASHBOARD_HTML): void {
  if (which === "/dashboard.js") {
    res.writeHead(200, { ...PAGE_HEADERS, "content-type": "text/javascript; charset=utf-8" });
    res.end(DASHBOARD_JS);
    return;
  }
  res.writeHead(200, { ...PAGE_HEADERS, "content-type": "text/html; charset=utf-8" });
  res.end(html);
}

/**
 * Redeems a one-time login code for a session and shows the page with it: the page's script keeps
 * it in its origin's storage and takes the used code out of the address bar. `agent` opens the page
 * on that agent's timeline.
 */
function login(res: ServerResponse, sessions: DashboardSessions, code: string, agent: string | null): void {
  const session = code ? sessions.redeem(code) : null;
  if (!session) {
    res.writeHead(401, { ...PAGE_HEADERS, "content-type": "text/html; charset=utf-8" });
    res.end("<!doctype html><title>igord</title><p>This login link is unknown, used or expired. Run <code>igord dashboard</code> again.</p>\n");
    return;
  }
  const opens = agent !== null && /^[A-Za-z0-9._-]{1,128}$/.test(agent) ? agent : "";
  // Both are of characters that need no escaping in an attribute (a base64url session, the agent-id rule).
  page(res, "/", DASHBOARD_HTML.replace("<head>", `<head>\n<meta name="igord-session" content="${session}">\n<meta name="igord-agent" content="${opens}">`));
}

/** HTTP status for an error a handler threw: a refusal of the request is 4xx, the daemon's own failure 500. */
function statusOf(e: unknown): number {
  if (!isIgordError(e)) return 500;
  switch (e.code) {
    case ErrorCode.StoreError:
    case ErrorCode.StoreCorrupt:
    case ErrorCode.DiskFull:
    case ErrorCode.WorkerCrashed:
      return 500;
    case ErrorCode.AgentNotFound:
      return 404;
    case ErrorCode.AgentExists:
    case ErrorCode.AgentRemoved:
    case ErrorCode.MigrationInProgress:
      return 409;
    case ErrorCode.ControlBodyTooLarge:
      return 413;
    case ErrorCode.P2pUnavailable:
      return 503;
    default:
      return 400;
  }
}

export async function startControlServer(
  addr: HostPort,
  token: string,
  backend: ControlBackend,
  logger: Logger,
): Promise<ControlServer> {
  const tokenBuf = Buffer.from(token);
  const sessions = new DashboardSessions();
  let origin = "";
  const table = routes(backend, sessions, () => origin);
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    // First, before any route (those that need no token included): a rebinding page gets nothing.
    const wrongHost = hostRefusal(req.headers.host, addr.host);
    if (wrongHost) return sendError(res, 403, ErrorCode.ControlHostRefused, wrongHost);
    const url = new URL(req.url ?? "/", "http://control");
    if (req.method === "GET" && url.pathname === "/login") return login(res, sessions, url.searchParams.get("code") ?? "", url.searchParams.get("agent"));
    // Unauthenticated: what a client asks before it sends the token (proof.ts).
    if (req.method === "GET" && url.pathname === PROOF_PATH) {
      const nonce = url.searchParams.get("nonce") ?? "";
      if (!PROOF_NONCE_RE.test(nonce)) return sendError(res, 400, ErrorCode.ControlBadRequest, `"nonce" must be 64 hex digits`);
      return send(res, 200, { proof: controlProof(token, nonce, { address: req.socket.localAddress ?? "", port: req.socket.localPort ?? 0 }) });
    }
    // The page and its script hold nothing of the node's: served to anyone who reaches the port.
    if (req.method === "GET" && (url.pathname === "/" || url.pathname === "/dashboard.js")) return page(res, url.pathname);
    // A dashboard session reads (GET) and nothing else; everything else needs the bearer token.
    const session = sessionFromHeader(req.headers.authorization);
    const viaSession = req.method === "GET" && session !== null && sessions.valid(session);
    if (!viaSession && !authorized(req, tokenBuf)) {
      res.setHeader("www-authenticate", 'Bearer realm="igord"');
      sendError(
        res,
        401,
        ErrorCode.ControlUnauthorized,
        "missing or wrong bearer token (see <data-dir>/control.token)",
      );
      return;
    }
    const path = url.pathname;
    const matching = table.filter((r) => r.path.test(path));
    const route = matching.find((r) => r.method === req.method);
    if (!route) {
      if (matching.length === 0) return sendError(res, 404, "NOT_FOUND", `no route ${req.method} ${path}`);
      const allow = [...new Set(matching.map((r) => r.method))].join(", ");
      res.setHeader("allow", allow);
      return sendError(res, 405, ErrorCode.ControlMethodNotAllowed, `${path} answers ${allow}, not ${req.method}`);
    }
    const params = (route.path.exec(path) ?? []).slice(1).map((p) => decodeSegment(p ?? ""));
    await route.handle(req, res, params, url);
  };
  /** Open connections, oldest first, each with whether a request of it is being answered. */
  const open = new Map<Socket, { busy: boolean }>();
  const server: Server = createServer({ headersTimeout: CONTROL_HEADERS_TIMEOUT_MS, requestTimeout: CONTROL_REQUEST_TIMEOUT_MS, connectionsCheckingInterval: CONTROL_TIMEOUT_CHECK_MS }, (req, res) => {
    const conn = open.get(req.socket);
    if (conn) conn.busy = true;
    res.once("close", () => {
      if (conn) conn.busy = false;
    });
    handle(req, res).catch((e: unknown) => {
      const status = statusOf(e);
      const code = isIgordError(e) ? e.code : "INTERNAL";
      if (status === 500)
        logger.error({ event: "control_error", err: (e as Error).message }, "control request failed");
      if (!res.headersSent) sendError(res, status, code, (e as Error).message);
      else res.end();
    });
  });
  // Past MAX_CONTROL_CONNECTIONS, the oldest connection with no request being answered makes room:
  // anyone local may connect without the token, and a caller holding sockets idle (or trickling
  // headers) must not keep out the CLI, which sends its request as soon as it connects. When every
  // one is busy, the new one is closed.
  server.on("connection", (socket: Socket) => {
    open.set(socket, { busy: false });
    socket.once("close", () => open.delete(socket));
    if (open.size <= MAX_CONTROL_CONNECTIONS) return;
    let victim = socket;
    for (const [s, c] of open) {
      if (!c.busy && s !== socket) {
        victim = s;
        break;
      }
    }
    open.delete(victim);
    victim.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    const fail = (e: NodeJS.ErrnoException): void => {
      const why = e.code === "EADDRINUSE" ? "the address is already in use" : e.code === "EADDRNOTAVAIL" ? "no interface has that address" : e.message;
      reject(new IgordError(ErrorCode.ControlUnavailable, `cannot open the control API on --control ${addr.host}:${addr.port}: ${why} (pick another with --control host:port, or --control off)`));
    };
    server.once("error", fail);
    server.listen(addr.port, addr.host, () => {
      server.off("error", fail);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  origin = `http://${addr.host.includes(":") ? `[${addr.host}]` : addr.host}:${bound.port}`;
  return {
    address: { host: addr.host, port: bound.port },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
