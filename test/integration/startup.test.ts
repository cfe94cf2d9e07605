// Start-up order: the control API is bound before any agent runs, and a busy control address fails
// the start at once naming the flag, before anything is loaded.
import { createServer, type Server } from "node:net";
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { formatAgents } from "../../src/cli/status.js";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { EXAMPLES, startTestNode, stopAllNodes, tempDir } from "../helpers/node.js";
import { igord, killAll } from "../helpers/process.js";

const servers: Server[] = [];
afterEach(async () => {
  await stopAllNodes();
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

describe("help", () => {
  it("igord run and igord resume show the control default they use (off), the daemon its own", () => {
    const entry = (text: string): string => text.replace(/\s+/g, " ").split("--control <host:port|off>")[1]?.split(" --")[0] ?? "";
    for (const sub of ["run", "resume"]) expect(entry(igord([sub, "--help"]).stdout)).toContain('(default: "off")');
    expect(entry(igord(["--help"]).stdout)).toContain('(default: "127.0.0.1:7420")');
  });
});

describe("a file left behind by an agent that moved away", () => {
  it("is said once at info with where the agent went, and is not an error", async () => {
    const P2P = { listen: "/ip4/127.0.0.1/tcp/0", "accept-migrations": "any", "tick-interval": "20ms", "migration-retry-delay": "10ms", "peer-refresh": "0" };
    const b = await startTestNode(P2P);
    const a = await startTestNode(P2P, { watch: true, start: false });
    mkdirSync(a.config.agentsDir, { recursive: true });
    copyFileSync(join(EXAMPLES, "heartbeat.wasm"), join(a.config.agentsDir, "heartbeat.wasm"));
    copyFileSync(join(EXAMPLES, "heartbeat.manifest.json"), join(a.config.agentsDir, "heartbeat.manifest.json"));
    await a.node.start();
    await a.node.whenLoaded();
    await a.waitFor<TickEvent>("tick", (e) => e.agentId === "heartbeat" && e.tick >= 2n);
    const r = await a.node.migrate("heartbeat", [b.node.migration!.addresses()[0]!]);
    expect(r.outcome).toBe("done");
    // igord agents --all shows where and when it went; the plain listing does not.
    expect(a.node.agentsJson().find((x) => x.id === "heartbeat")).toBeUndefined();
    const retired = a.node.agentsJson({ all: true }).find((x) => x.id === "heartbeat");
    expect(retired).toMatchObject({ status: "retired", target: b.node.migration!.addresses()[0], epoch: "(0,0)" });
    expect(formatAgents([retired!])).toMatch(/heartbeat\s+retired\s+-\s+-\s+-\s+migrated to \/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/\w+ \(handed off at epoch \(0,0\)\) \d{4}-/);
    await a.stop();
    const again = await startTestNode(P2P, { dir: a.dir, watch: true, resumeStored: true });
    const said = again.logs.events("agent_file_retired");
    expect(said.length).toBe(1);
    expect(String(said[0]?.target)).toContain(b.node.migration!.peerId);
    expect(again.logs.lines.filter((l) => (l.level as number) >= 50)).toEqual([]);
    expect(again.node.scheduler.has("heartbeat")).toBe(false);
  });
});
