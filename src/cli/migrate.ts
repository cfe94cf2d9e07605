// `igord migrate`, `igord peers` and `igord migrations`: ask the running daemon over its control API.
import { printable } from "../log/printable.js";
import type { HostPort } from "../config/units.js";
import { controlGet, controlPost } from "../control/client.js";

/** A migration with retries, backoff and fallbacks can take a while; the CLI waits this long. */
export const MIGRATE_CLIENT_TIMEOUT_MS = 10 * 60_000;

const out = (s: string): void => {
  process.stdout.write(`${printable(s, true)}\n`);
};

/** A value on the line it belongs to: a peer's text (a refusal's message, its addresses) may hold line feeds. */
const one = (v: unknown): string => printable(String(v));

function table(cells: string[][]): string {
  const rows = cells.map((row) => row.map(one));
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? "").length))) ?? [];
  return rows.map((row) => row.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  ").trimEnd()).join("\n");
}

/** What POST /v1/agents/:id/migrate answers. */
export interface MigrationAnswer {
  outcome: string;
  target: string | null;
  peer: string | null;
  address: string | null;
  attempts: number;
  fallbacks: number;
  epoch: string | null;
  error: { code: string; message: string } | null;
  durationMs: number;
}

/** The one line `igord migrate` prints for its outcome. */
export function formatMigration(agent: string, r: MigrationAnswer): string {
  // The peer and the address the connection really used, which may not be the one typed.
  if (r.outcome === "done") return `${one(agent)} migrated to ${one(r.peer ?? r.target)} via ${one(r.address ?? r.target)} at epoch ${one(r.epoch)} (${r.attempts} attempt(s), ${r.fallbacks} fallback(s), ${r.durationMs} ms)`;
  if (r.outcome === "reverted") return `${one(agent)} was not migrated (${one(r.error?.code)}: ${one(r.error?.message)}); it keeps running here`;
  return `${one(agent)} was sent to ${one(r.target)} without a confirmation (${one(r.error?.code)}); RECOVERY_REQUIRED until that node answers`;
}

/** Exit code: 0 done, 1 reverted (the agent keeps running here), 2 recovery (resolution pending). */
export async function migrateCommand(control: HostPort, dataDir: string, agent: string, o: { to?: string; fallback: string[]; json: boolean }): Promise<number> {
  const r = (await controlPost(
    control,
    dataDir,
    `/v1/agents/${encodeURIComponent(agent)}/migrate`,
    { ...(o.to ? { to: o.to } : {}), fallback: o.fallback },
    MIGRATE_CLIENT_TIMEOUT_MS,
  )) as MigrationAnswer;
  out(o.json ? JSON.stringify(r, null, 2) : formatMigration(agent, r));
  return r.outcome === "done" ? 0 : r.outcome === "reverted" ? 1 : 2;
}

export async function peersCommand(control: HostPort, dataDir: string, json: boolean): Promise<void> {
  const r = (await controlGet(control, dataDir, "/v1/peers")) as {
    peerId: string | null;
    addrs: string[];
    peers: { id: string; price: string | null; capabilities: string[] | null; failures: number; lastSeen: string | null; rttMs: number | null; vouched: boolean }[];
  };
  if (json) return out(JSON.stringify(r, null, 2));
  out(`this node: ${one(r.peerId ?? "(p2p off)")}`);
  for (const a of r.addrs) out(`  ${one(a)}`);
  if (r.peers.length === 0) return out("no known peers");
  out(
    table([
      // CANDIDATE: the operator vouched for it (--bootstrap, --trusted-peer, --mdns), so `igord migrate` without --to may choose it.
      ["PEER", "CANDIDATE", "PRICE µ¢/s", "CAPABILITIES", "RTT ms", "FAILURES", "LAST SEEN"],
      ...r.peers.map((p) => [p.id, p.vouched ? "yes" : "no", p.price ?? "?", p.capabilities?.join(",") ?? "?", p.rttMs === null ? "?" : p.rttMs.toFixed(1), String(p.failures), p.lastSeen ?? "never"]),
    ]),
  );
}

export async function migrationsCommand(control: HostPort, dataDir: string, agent: string | undefined, json: boolean): Promise<void> {
  const r = (await controlGet(control, dataDir, `/v1/migrations${agent ? `?agent=${encodeURIComponent(agent)}` : ""}`)) as {
    migrations: { id: number; agentId: string; direction: string; peer: string | null; state: string; attempts: number; error: { code: string } | null; updatedAt: string }[];
  };
  if (json) return out(JSON.stringify(r, null, 2));
  out(
    table([
      ["ID", "AGENT", "DIR", "STATE", "ATTEMPTS", "PEER", "ERROR", "UPDATED"],
      ...r.migrations.map((m) => [String(m.id), m.agentId, m.direction, m.state, String(m.attempts), m.peer ?? "", m.error?.code ?? "", m.updatedAt]),
    ]),
  );
}
