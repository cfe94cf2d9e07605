// The control API's bearer token, kept in <data-dir>/control.token with mode 0600.
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ErrorCode, IgordError } from "../errors.js";

export const TOKEN_FILE = "control.token";

export function tokenPath(dataDir: string): string {
  return join(dataDir, TOKEN_FILE);
}

/** Returns the node's token, creating it (0600) on first start and tightening loose permissions. */
export function ensureControlToken(dataDir: string): string {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const path = tokenPath(dataDir);
  try {
    writeFileSync(path, `${randomBytes(32).toString("hex")}\n`, { mode: 0o600, flag: "wx" });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    const st = statSync(path);
    // The daemon is the one starting here: a message about a running daemon would mislead.
    if (!st.isFile()) throw new IgordError(ErrorCode.ConfigInvalid, `${path} is not a file: the control token is kept there; remove it, or run with --control off`);
    if ((st.mode & 0o077) !== 0) chmodSync(path, 0o600);
  }
  return readControlToken(dataDir);
}

export function readControlToken(dataDir: string): string {
  const path = tokenPath(dataDir);
  let token: string;
  try {
    token = readFileSync(path, "utf8").trim();
  } catch (e) {
    throw new IgordError(
      ErrorCode.ControlUnavailable,
      `cannot read the control token ${path} (${(e as NodeJS.ErrnoException).code}); is the daemon running with --data-dir ${dataDir}?`,
    );
  }
  if (token.length === 0)
    throw new IgordError(ErrorCode.ControlUnavailable, `control token ${path} is empty`);
  return token;
}
