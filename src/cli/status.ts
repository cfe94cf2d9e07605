// `igord status` and `igord agents`: read the daemon's control API and print it.

import { printable } from "../log/printable.js";
import type { HostPort } from "../config/units.js";
import { controlGet } from "../control/client.js";

type Json = Record<string, unknown>;

/**
 * A table cell: absent values print as "-", never "undefined" or "null". On one line: a cell may hold
 * what a module or a peer wrote (a load failure names the module's imports), and a line feed in it
 * would print a row of its own.
 */
function cell(v: unknown): string {
  if (v === undefined || v === null || v === "") return "-";
  return printable(typeof v === "object" ? JSON.stringify(v) : String(v));
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? "").length))) ?? [];
  return rows.map((row) => row.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  ").trimEnd()).join("\n");
}

export function formatStatus(s: Json): string {
  const agents = (s.agents ?? {}) as Record<string, number | undefined>;
  const workers = (s.workers ?? {}) as { workers?: number; agentsPerWorker?: number[] };
  const p2p = s.p2p as { peerId?: string; addrs?: string[] } | null | undefined;
  const counts = [
    `${agents.running ?? 0} running${agents.hibernated ? ` (${agents.hibernated} hibernated until their next tick)` : ""}`,
    `${agents.stopped ?? 0} stopped`,
    `${agents.failed ?? 0} failed`,
    ...(agents.quarantined ? [`${agents.quarantined} quarantined`] : []),
    ...(agents.migrating ? [`${agents.migrating} migrating (running nowhere until the hop ends; igord migrations shows it)`] : []),
    ...(agents.loadFailed ? [`${agents.loadFailed} failed to load (igord agents lists them)`] : []),
    ...(agents.staleBinaries ? [`${agents.staleBinaries} with a stale binary in the agents dir (igord agents shows the command to run)`] : []),
  ];
  return [
    `igord ${cell(s.version)} (pid ${cell(s.pid)}), up ${cell(s.uptimeSeconds)}s`,
    `agents: ${counts.join(", ")}`,
    `workers: ${cell(workers.workers)} (${(workers.agentsPerWorker ?? []).join("/")} agents)`,
    `capabilities: ${((s.capabilities ?? []) as string[]).join(", ")}`,
    `price: ${cell(s.priceMicrocents)} µ¢/s`,
    // The addresses other nodes (and `igord migrate --to`) reach this node at.
    `p2p: ${p2p ? (p2p.addrs ?? []).join(" ") || cell(p2p.peerId) : "off"}`,
    "",
  ].join("\n");
}

/** The divergence count, and the last one (tick and code) when there was one: visible without --json. */
function divergenceCell(a: Json): string {
  const last = a.lastDivergence as { tick?: string; code?: string } | null | undefined;
  return last ? `${cell(a.divergences)} (last: tick ${cell(last.tick)} ${cell(last.code)})` : cell(a.divergences);
}

/** Agents as a table; files that failed to load follow, each with its path, code and message. */
export function formatAgents(agents: readonly Json[]): string {
  const loaded = agents.filter((a) => a.status !== "load_failed");
  const failed = agents.filter((a) => a.status === "load_failed");
  const out: string[] = [];
  if (loaded.length > 0 || failed.length === 0) {
    const rows = [["ID", "STATUS", "TICK", "BUDGET", "DIVERGENCES", "REASON"]];
    for (const a of loaded) {
      const error = a.error as { code?: string } | null | undefined;
      // A retired agent's reason says where it went and when.
      const where = a.status === "retired" ? `migrated to ${cell(a.target)} (handed off at epoch ${cell(a.epoch)})${a.since ? ` ${cell(a.since)}` : ""}` : null;
      const stale = a.staleBinary as { command?: string } | undefined;
      const reason = stale ? `stale binary: run ${cell(stale.command)}` : (where ?? a.reason ?? error?.code);
      rows.push([cell(a.id), cell(a.hibernated === true ? "hibernated" : a.status), cell(a.tick), cell(a.budget), divergenceCell(a), cell(reason)]);
    }
    out.push(table(rows));
  }
  if (failed.length > 0) {
    out.push(`${loaded.length > 0 ? "\n" : ""}failed to load:`);
    for (const f of failed) {
      const error = (f.error ?? {}) as { code?: string; message?: string };
      out.push(`  ${cell(f.path)}  [${cell(error.code)}] ${cell(error.message)}`);
    }
  }
  return `${out.join("\n")}\n`;
}

export async function printStatus(control: HostPort, dataDir: string, json: boolean, _all = false): Promise<void> {
  const s = (await controlGet(control, dataDir, "/v1/status")) as Json;
  process.stdout.write(json ? `${JSON.stringify(s, null, 2)}\n` : printable(formatStatus(s), true));
}

export async function printAgents(control: HostPort, dataDir: string, json: boolean, all = false): Promise<void> {
  const r = (await controlGet(control, dataDir, `/v1/agents${all ? "?all=1" : ""}`)) as { agents: Json[] };
  process.stdout.write(json ? `${JSON.stringify(r, null, 2)}\n` : printable(formatAgents(r.agents), true));
}
