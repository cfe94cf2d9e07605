// Client side of the control API, used by `igord status`, `agents`, `migrate`, `peers`... Plain
// node:http rather than fetch: loading undici costs a CLI command more than its whole request.
import { randomBytes } from "node:crypto";
import { request } from "node:http";
import type { HostPort } from "../config/units.js";
import { ErrorCode, IgordError } from "../errors.js";
import { type Endpoint, PROOF_PATH, proofHolds } from "./proof.js";
import { readControlToken } from "./token.js";

export const CONTROL_CLIENT_TIMEOUT_MS = 5000;
/**
 * How long igord stop / start / remove / upgrade wait for the daemon: a stop waits for the tick in
 * flight and a checkpoint, a start or upgrade for a load (each bounded by the daemon's tick timeout).
 */
export const AGENT_OPERATION_TIMEOUT_MS = 120_000;
/** Largest answer the client reads (an agents listing of a very full node stays far below). */
export const MAX_CONTROL_ANSWER_BYTES = 64 * 1024 * 1024;

export async function controlGet(control: HostPort, dataDir: string, path: string): Promise<unknown> {
  return controlRequest(control, dataDir, "GET", path);
}

export async function controlPost(control: HostPort, dataDir: string, path: string, body?: unknown, timeoutMs = CONTROL_CLIENT_TIMEOUT_MS): Promise<unknown> {
  return controlRequest(control, dataDir, "POST", path, body, timeoutMs);
}

interface Answer {
  status: number;
  statusText: string;
  text: string;
  /** The address and port this client actually reached. */
  reached: Endpoint;
}

function send(control: HostPort, method: string, path: string, token: string | null, body: string | undefined, timeoutMs: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: control.host,
        port: control.port,
        method,
        path,
        headers: { ...(token === null ? {} : { authorization: `Bearer ${token}` }), ...(body === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(body) }) },
        timeout: timeoutMs,
      },
      (res) => {
        const reached = { address: res.socket.remoteAddress ?? "", port: res.socket.remotePort ?? 0 };
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size > MAX_CONTROL_ANSWER_BYTES) req.destroy(new Error(`answer larger than ${MAX_CONTROL_ANSWER_BYTES} bytes`));
          else chunks.push(c);
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, statusText: res.statusMessage ?? "", text: Buffer.concat(chunks).toString("utf8"), reached }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs}ms`)));
    req.on("error", reject);
    req.end(body);
  });
}

async function controlRequest(control: HostPort, dataDir: string, method: string, path: string, body?: unknown, timeoutMs = CONTROL_CLIENT_TIMEOUT_MS): Promise<unknown> {
  const token = readControlToken(dataDir);
  const host = control.host.includes(":") ? `[${control.host}]` : control.host;
  const unreachable = (e: unknown): IgordError => {
    const code = (e as NodeJS.ErrnoException).code;
    return new IgordError(ErrorCode.ControlUnavailable, `cannot reach the daemon's control API at ${host}:${control.port}: ${code ?? (e as Error).message}`);
  };
  // The server proves it holds the token for the endpoint reached before the token is sent (proof.ts).
  const nonce = randomBytes(32).toString("hex");
  let proof: Answer;
  try {
    proof = await send(control, "GET", `${PROOF_PATH}?nonce=${nonce}`, null, undefined, Math.min(timeoutMs, CONTROL_CLIENT_TIMEOUT_MS));
  } catch (e) {
    throw unreachable(e);
  }
  let said: { proof?: unknown };
  try {
    said = JSON.parse(proof.text) as typeof said;
  } catch {
    // Not the daemon's JSON (another server on that port, or a proxy): report what came back.
    throw new IgordError(ErrorCode.ControlUnavailable, `control API ${path}: HTTP ${proof.status} with a non-JSON answer: ${proof.text.slice(0, 200)} (not the daemon: the token was not sent)`);
  }
  if (proof.status !== 200 || !proofHolds(said?.proof, token, nonce, proof.reached)) {
    throw new IgordError(
      ErrorCode.ControlUnavailable,
      `the server at ${host}:${control.port} did not prove it holds this data dir's control token, so the token was not sent: it is not the daemon of ${dataDir} (a daemon that died leaves its ${dataDir}/control.addr behind)`,
    );
  }
  let res: Answer;
  try {
    res = await send(control, method, path, token, body === undefined ? undefined : JSON.stringify(body), timeoutMs);
  } catch (e) {
    throw unreachable(e);
  }
  let answer: { error?: { code: string; message: string } };
  try {
    answer = JSON.parse(res.text) as typeof answer;
  } catch {
    // Not the daemon's JSON (another server on that port, or a proxy): report what came back.
    throw new IgordError(ErrorCode.ControlUnavailable, `control API ${path}: HTTP ${res.status} with a non-JSON answer: ${res.text.slice(0, 200)}`);
  }
  if (res.status < 200 || res.status >= 300) {
    const code = res.status === 401 ? ErrorCode.ControlUnauthorized : ((answer.error?.code as ErrorCode | undefined) ?? ErrorCode.ControlUnavailable);
    throw new IgordError(code, `control API ${path}: ${answer.error?.message ?? res.statusText}`);
  }
  return answer;
}
