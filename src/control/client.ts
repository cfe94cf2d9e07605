// Client side of the control API, used by `igord status` and `igord agents`.
import type { HostPort } from "../config/units.js";
import { ErrorCode, IgordError } from "../errors.js";
import { readControlToken } from "./token.js";

export const CONTROL_CLIENT_TIMEOUT_MS = 5000;

export async function controlGet(control: HostPort, dataDir: string, path: string): Promise<unknown> {
  return controlRequest(control, dataDir, "GET", path);
}

export async function controlPost(control: HostPort, dataDir: string, path: string, body?: unknown, timeoutMs = CONTROL_CLIENT_TIMEOUT_MS): Promise<unknown> {
  return controlRequest(control, dataDir, "POST", path, body, timeoutMs);
}

async function controlRequest(control: HostPort, dataDir: string, method: string, path: string, body?: unknown, timeoutMs = CONTROL_CLIENT_TIMEOUT_MS): Promise<unknown> {
  const token = readControlToken(dataDir);
  const host = control.host.includes(":") ? `[${control.host}]` : control.host;
  let res: Response;
  try {
    res = await fetch(`http://${host}:${control.port}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (e) {
    throw new IgordError(
      ErrorCode.ControlUnavailable,
      `cannot reach the daemon's control API at ${host}:${control.port}: ${(e as Error).cause ?? (e as Error).message}`,
    );
  }
  const text = await res.text();
  let answer: { error?: { code: string; message: string } };
  try {
    answer = JSON.parse(text) as typeof answer;
  } catch {
    // Not the daemon's JSON (another server on that port, or a proxy): report what came back.
    throw new IgordError(ErrorCode.ControlUnavailable, `control API ${path}: HTTP ${res.status} with a non-JSON answer: ${text.slice(0, 200)}`);
  }
  if (!res.ok) {
    const code = res.status === 401 ? ErrorCode.ControlUnauthorized : ((answer.error?.code as ErrorCode | undefined) ?? ErrorCode.ControlUnavailable);
    throw new IgordError(code, `control API ${path}: ${answer.error?.message ?? res.statusText}`);
  }
  return answer;
}
