// The local admin API: JSON over HTTP on --control, every route behind the bearer token.
import { timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import type { HostPort } from "../config/units.js";
import { ErrorCode, IgordError, isIgordError } from "../errors.js";
import type { agentJson } from "./json.js";

/** Request bodies above this are refused. */
export const MAX_CONTROL_BODY_BYTES = 64 * 1024;

export interface ControlBackend {
  status(): Record<string, unknown>;
  agents(): Record<string, unknown>[] | ReturnType<typeof agentJson>[];
  agent(id: string): Record<string, unknown> | undefined;
  metrics(): Promise<{ contentType: string; body: string }>;
  setCapabilities(caps: string[]): string[];
  /** Starts a stored agent now (after an import or a recovery). */
  resume(id: string): Promise<Record<string, unknown>>;
  /** Migrates a running agent; resolves with the outcome. */
  migrate(id: string, targets: string[]): Promise<Record<string, unknown>>;
  peers(): Record<string, unknown>;
  /** The agent's published messages (the emit side effect), oldest first, after a tick. */
  outbox(id: string, afterTick?: string): Record<string, unknown>[];
  migrations(agentId?: string): Record<string, unknown>[];
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
  send(res, status, { error: { code, message } });
}

function authorized(req: IncomingMessage, token: Buffer): boolean {
  const h = req.headers.authorization ?? "";
  const m = /^Bearer (.+)$/.exec(h);
  if (!m) return false;
  const given = Buffer.from(m[1] ?? "");
  return given.length === token.length && timingSafeEqual(given, token);
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_CONTROL_BODY_BYTES)
      throw new IgordError(ErrorCode.ConfigInvalid, `request body above ${MAX_CONTROL_BODY_BYTES} bytes`);
    chunks.push(c as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw new IgordError(ErrorCode.ConfigInvalid, "request body is not valid JSON");
  }
}

export async function startControlServer(
  addr: HostPort,
  token: string,
  backend: ControlBackend,
  logger: Logger,
): Promise<ControlServer> {
  const tokenBuf = Buffer.from(token);
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (!authorized(req, tokenBuf)) {
      res.setHeader("www-authenticate", 'Bearer realm="igord"');
      sendError(
        res,
        401,
        ErrorCode.ControlUnauthorized,
        "missing or wrong bearer token (see <data-dir>/control.token)",
      );
      return;
    }
    const url = new URL(req.url ?? "/", "http://control");
    const path = url.pathname;
    if (req.method === "GET" && path === "/v1/status") return send(res, 200, backend.status());
    if (req.method === "GET" && path === "/v1/agents") return send(res, 200, { agents: backend.agents() });
    if (req.method === "POST" && /^\/v1\/agents\/[^/]+\/resume$/.test(path)) {
      const id = decodeURIComponent(path.slice("/v1/agents/".length, -"/resume".length));
      return send(res, 200, await backend.resume(id));
    }
    if (req.method === "POST" && /^\/v1\/agents\/[^/]+\/migrate$/.test(path)) {
      const id = decodeURIComponent(path.slice("/v1/agents/".length, -"/migrate".length));
      const body = (await readBody(req)) as { to?: unknown; fallback?: unknown };
      const list = (v: unknown, name: string): string[] => {
        if (v === undefined || v === null) return [];
        if (typeof v === "string") return [v];
        if (Array.isArray(v) && v.every((x) => typeof x === "string")) return v as string[];
        throw new IgordError(ErrorCode.ConfigInvalid, `"${name}" must be a multiaddr or peer id, or an array of them`);
      };
      const to = list(body.to, "to");
      const fallback = list(body.fallback, "fallback");
      if (fallback.length > 0 && to.length === 0) throw new IgordError(ErrorCode.ConfigInvalid, '"fallback" needs a "to" target first');
      return send(res, 200, await backend.migrate(id, [...to, ...fallback]));
    }
    if (req.method === "GET" && path === "/v1/peers") return send(res, 200, backend.peers());
    if (req.method === "GET" && /^\/v1\/agents\/[^/]+\/outbox$/.test(path)) {
      const id = decodeURIComponent(path.slice("/v1/agents/".length, -"/outbox".length));
      return send(res, 200, { messages: backend.outbox(id, url.searchParams.get("after") ?? undefined) });
    }
    if (req.method === "GET" && path === "/v1/migrations") {
      return send(res, 200, { migrations: backend.migrations(url.searchParams.get("agent") ?? undefined) });
    }
    if (req.method === "GET" && path.startsWith("/v1/agents/")) {
      const id = decodeURIComponent(path.slice("/v1/agents/".length));
      const a = backend.agent(id);
      if (!a) return sendError(res, 404, ErrorCode.AgentNotFound, `no agent "${id}" on this node`);
      return send(res, 200, a);
    }
    if (req.method === "GET" && path === "/metrics") {
      const m = await backend.metrics();
      res.writeHead(200, { "content-type": m.contentType });
      res.end(m.body);
      return;
    }
    if (req.method === "PUT" && path === "/v1/capabilities") {
      const body = (await readBody(req)) as { capabilities?: unknown };
      if (!Array.isArray(body.capabilities) || body.capabilities.some((c) => typeof c !== "string")) {
        return sendError(res, 400, ErrorCode.ConfigInvalid, 'body must be {"capabilities": ["clock", ...]}');
      }
      return send(res, 200, { capabilities: backend.setCapabilities(body.capabilities as string[]) });
    }
    sendError(res, 404, "NOT_FOUND", `no route ${req.method} ${path}`);
  };
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      const status = !isIgordError(e)
        ? 500
        : e.code === ErrorCode.AgentNotFound
          ? 404
          : e.code === ErrorCode.AgentExists || e.code === ErrorCode.MigrationInProgress
            ? 409
            : e.code === ErrorCode.P2pUnavailable
              ? 503
              : 400;
      const code = isIgordError(e) ? e.code : "INTERNAL";
      if (status === 500)
        logger.error({ event: "control_error", err: (e as Error).message }, "control request failed");
      if (!res.headersSent) sendError(res, status, code, (e as Error).message);
      else res.end();
    });
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
  return {
    address: { host: addr.host, port: bound.port },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
