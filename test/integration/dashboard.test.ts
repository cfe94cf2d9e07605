// The dashboard: a one-time login link (minted with the bearer token) becomes an HttpOnly session
// cookie that reads (GET) and nothing else; the page renders a running node's agents in a real
// headless Chromium and follows a migration.
import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { EXAMPLES, startTestNode, stopAllNodes, tempDir, type TestNode } from "../helpers/node.js";

afterEach(stopAllNodes);

const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p));

function base(t: TestNode): string {
  const a = t.node.controlAddress!;
  return `http://${a.host}:${a.port}`;
}

async function loginUrl(t: TestNode): Promise<string> {
  const token = readFileSync(join(t.config.dataDir, "control.token"), "utf8").trim();
  const r = await fetch(`${base(t)}/v1/dashboard/login`, { method: "POST", headers: { authorization: `Bearer ${token}` } });
  expect(r.status).toBe(200);
  return ((await r.json()) as { url: string }).url;
}

describe("dashboard access", () => {
  it("a login link works once and yields a session, sent as a header and never set as a cookie, that can read but never act", async () => {
    const t = await startTestNode({ control: "127.0.0.1:0", "tick-interval": "20ms" });
    await t.node.addAgent({ wasmPath: join(EXAMPLES, "heartbeat.wasm") });
    await t.waitFor<TickEvent>("tick", (e) => e.tick >= 2n);
    const url = await loginUrl(t);
    expect(url).toMatch(new RegExp(`^${base(t)}/login\\?code=[\\w-]{20,}$`));
    const first = await fetch(`${url}&agent=heartbeat`, { redirect: "manual" });
    expect(first.status).toBe(200);
    expect(first.headers.get("content-security-policy")).toContain("default-src 'self'");
    // A cookie went to every port of the host: any local server the browser visited got it.
    expect(first.headers.get("set-cookie")).toBeNull();
    const html = await first.text();
    const id = /<meta name="igord-session" content="([\w-]+)">/.exec(html)?.[1];
    expect(id).toMatch(/^[\w-]{20,}$/);
    expect(html).toContain('<meta name="igord-agent" content="heartbeat">');
    expect((await fetch(url, { redirect: "manual" })).status).toBe(401); // used once
    const session = { authorization: `Session ${id}` };

    // The page and its script carry nothing of the node's: served without a session.
    const page = await fetch(`${base(t)}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<script src="/dashboard.js">');
    const agents = (await (await fetch(`${base(t)}/v1/agents?all=1`, { headers: session })).json()) as { agents: { id: string }[] };
    expect(agents.agents.map((a) => a.id)).toEqual(["heartbeat"]);
    const timeline = (await (await fetch(`${base(t)}/v1/agents/heartbeat/timeline`, { headers: session })).json()) as { checkpoints: unknown[] };
    expect(timeline.checkpoints.length).toBeGreaterThan(0);
    expect((await fetch(`${base(t)}/v1/agents`)).status).toBe(401);
    // The session acts on nothing and mints nothing.
    expect((await fetch(`${base(t)}/v1/agents/heartbeat/resume`, { method: "POST", headers: session })).status).toBe(401);
    expect((await fetch(`${base(t)}/v1/dashboard/login`, { method: "POST", headers: session })).status).toBe(401);
    expect((await fetch(`${base(t)}/v1/agents`, { headers: { authorization: "Session forged" } })).status).toBe(401);
  });
});

// Each test starts Chromium three or four times (~5 s each alone, more beside a full suite on two
// cores: 30 s was passed once with four helpers running); each start is bounded by render's own kill.
const BROWSER_TEST_TIMEOUT_MS = 120_000;

describe.skipIf(!CHROMIUM)("the dashboard in headless Chromium", { timeout: BROWSER_TEST_TIMEOUT_MS }, () => {
  if (!CHROMIUM) console.warn("skipping the browser test: no chromium at /usr/bin/chromium (apt-get install chromium)");

  /** The page's DOM after its scripts ran (asynchronously: the nodes answer from this very process). */
  async function render(url: string, profile = tempDir("igord-chromium-")): Promise<string> {
    const args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", `--user-data-dir=${profile}`, "--virtual-time-budget=5000", "--dump-dom", url];
    const child = spawn(CHROMIUM!, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    clearTimeout(timer);
    expect(code, err.slice(-2000)).toBe(0);
    return out;
  }

  it("renders the agents of a running node, and shows an agent as migrated once it moved", async () => {
    const P2P = { control: "127.0.0.1:0", listen: "/ip4/127.0.0.1/tcp/0", "accept-migrations": "any", "tick-interval": "20ms", "peer-refresh": "0" };
    const b = await startTestNode(P2P);
    const a = await startTestNode(P2P);
    await a.node.addAgent({ wasmPath: join(EXAMPLES, "heartbeat.wasm") });
    await a.node.addAgent({ wasmPath: join(EXAMPLES, "survivor.wasm") });
    await a.waitFor<TickEvent>("tick", (e) => e.agentId === "heartbeat" && e.tick >= 3n);
    const before = await render(await loginUrl(a));
    expect(before).toMatch(/<tr class="agent running[^"]*" data-agent="heartbeat"><td>heartbeat<\/td><td>running<\/td><td>\d+<\/td>/);
    expect(before).toContain('data-agent="survivor"');
    expect(before).toContain(`node ${a.node.nodeId}`);
    expect((await a.node.migrate("heartbeat", [b.node.migration!.addresses()[0]!])).outcome).toBe("done");
    const after = await render(await loginUrl(a));
    expect(after).toMatch(/<tr class="agent retired[^"]*" data-agent="heartbeat"><td>heartbeat<\/td><td>retired<\/td>/);
    expect(after).toContain(`migrated to ${b.node.migration!.addresses()[0]}`);
    // The migrations table shows the finished handoff.
    expect(after).toMatch(/<td>heartbeat<\/td><td>out<\/td><td>done<\/td>/);
    // One agent's timeline: its checkpoints over time, and the migration as a line.
    const timeline = await render(`${await loginUrl(a)}&agent=heartbeat`);
    expect(timeline).toContain('<span id="timeline-agent" class="muted">heartbeat</span>');
    expect((timeline.match(/<circle [^>]*class="checkpoint"/g) ?? []).length).toBeGreaterThan(1);
    expect(timeline).toMatch(/<line [^>]*class="migration"><title>out done /);
  });

  it("a malformed #agent= link, or an agent without a timeline, leaves the page working: the node's line and the agents stay", async () => {
    const t = await startTestNode({ control: "127.0.0.1:0", "tick-interval": "20ms" });
    await t.node.addAgent({ wasmPath: join(EXAMPLES, "heartbeat.wasm") });
    const broken = join(t.dir, "broken.wasm");
    writeFileSync(broken, "not wasm");
    await t.node.addAgent({ wasmPath: broken }).catch(() => undefined);
    await t.waitFor<TickEvent>("tick", (e) => e.tick >= 2n);
    // Logged in once in this browser profile (the session kept in the origin's storage), then a
    // link with a malformed escape: decodeURIComponent threw at the page's top level, and the page
    // stayed on "connecting…".
    const profile = tempDir("igord-chromium-");
    expect(await render(await loginUrl(t), profile)).toContain(`node ${t.node.nodeId}`);
    const malformed = await render(`${base(t)}/#agent=%E0%A4%A`, profile);
    expect(malformed).toContain(`node ${t.node.nodeId}`);
    expect(malformed).toContain('data-agent="heartbeat"');
    // A page in a browser without the session says what to do.
    expect(await render(`${base(t)}/`)).toContain("Not logged in: run igord dashboard on the node");
    // The timeline's 404 replaced the node's line at every poll.
    const noTimeline = await render(`${await loginUrl(t)}&agent=broken`);
    expect(noTimeline).toContain(`node ${t.node.nodeId}`);
    expect(noTimeline).toMatch(/<span id="timeline-agent" class="muted">broken: [^<]*404/);
  });
});
