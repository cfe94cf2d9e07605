// Start-up order: the control API is bound before any agent runs, and a busy control address fails
// the start at once naming the flag, before anything is loaded.
import { createServer, type Server } from "node:net";
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { EXAMPLES, tempDir } from "../helpers/node.js";
import { igord, killAll } from "../helpers/process.js";

const servers: Server[] = [];
afterEach(() => {
  killAll();
  for (const s of servers.splice(0)) s.close();
});

function occupy(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    servers.push(s);
    s.listen(0, "127.0.0.1", () => resolve((s.address() as { port: number }).port));
  });
}

describe("start-up", () => {
  it("a busy --control address fails the start naming the flag, before any agent runs", async () => {
    const port = await occupy();
    const dir = tempDir();
    mkdirSync(join(dir, "agents"));
    copyFileSync(join(EXAMPLES, "heartbeat.wasm"), join(dir, "agents", "heartbeat.wasm"));
    copyFileSync(join(EXAMPLES, "heartbeat.manifest.json"), join(dir, "agents", "heartbeat.manifest.json"));
    const r = igord(["--agents-dir", join(dir, "agents"), "--data-dir", join(dir, "data"), "--control", `127.0.0.1:${port}`]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`--control 127.0.0.1:${port}`);
    expect(r.stderr).toMatch(/already in use/);
    expect(r.stdout).not.toContain('"event":"agent_started"');
  });
});
