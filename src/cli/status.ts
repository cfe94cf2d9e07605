// `igord status` and `igord agents`: read the daemon's control API and print it.

import type { HostPort } from "../config/units.js";
import { controlGet } from "../control/client.js";

export async function printStatus(control: HostPort, dataDir: string, json: boolean): Promise<void> {
  const s = (await controlGet(control, dataDir, "/v1/status")) as Record<string, unknown>;
  if (json) {
    process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
    return;
  }
  const agents = s.agents as Record<string, number>;
  const workers = s.workers as { workers: number; agentsPerWorker: number[] };
  process.stdout.write(
    [
      `igord ${s.version} (pid ${s.pid}), up ${s.uptimeSeconds}s`,
      `agents: ${agents.running ?? 0} running, ${agents.stopped ?? 0} stopped, ${agents.failed ?? 0} failed`,
      `workers: ${workers.workers} (${workers.agentsPerWorker.join("/")} agents)`,
      `capabilities: ${(s.capabilities as string[]).join(", ")}`,
      `price: ${s.priceMicrocents} µ¢/s`,
      "",
    ].join("\n"),
  );
}

export async function printAgents(control: HostPort, dataDir: string, json: boolean): Promise<void> {
  const r = (await controlGet(control, dataDir, "/v1/agents")) as { agents: Record<string, unknown>[] };
  if (json) {
    process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    return;
  }
  const rows = [["ID", "STATUS", "TICK", "BUDGET", "REASON"]];
  for (const a of r.agents)
    rows.push([String(a.id), String(a.status), String(a.tick), String(a.budget), String(a.reason ?? "")]);
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? "").length))) ?? [];
  process.stdout.write(
    `${rows
      .map((row) =>
        row
          .map((c, i) => c.padEnd(widths[i] ?? 0))
          .join("  ")
          .trimEnd(),
      )
      .join("\n")}\n`,
  );
}
