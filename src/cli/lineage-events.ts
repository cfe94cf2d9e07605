// `igord lineage <agent>`: the agent's signed lineage events from --data-dir, oldest first — budget
// overrides, recoveries, imports and code upgrades (old module -> new module at tick N) — each with
// whether its signature verifies under the agent's key.
import { formatUnits } from "../budget/money.js";
import { budgetOverrideSigningBytes } from "../checkpoint/overrides.js";
import { describeUpgrade, parseCodeUpgrade } from "../checkpoint/upgrades.js";
import { ErrorCode, IgordError } from "../errors.js";
import { hex } from "../hash/bytes.js";
import { verifyBytes } from "../identity/keys.js";
import { printable } from "../log/printable.js";
import { readStore } from "./data-dir-store.js";

export function lineageCommand(agentId: string, o: { dataDir: string; json: boolean }): number {
  return readStore(o.dataDir, (store) => {
    const row = store.agent(agentId);
    if (!row) throw new IgordError(ErrorCode.AgentNotFound, `no agent "${agentId}" in ${store.path}`);
    const key = store.identity(agentId).publicKey;
    const events = store.lineageEvents(agentId).map((e, i) => {
      const upgrade = e.kind === "code_upgrade" ? parseCodeUpgrade(e) : null;
      return {
        seq: i + 1,
        kind: e.kind,
        tick: e.tick.toString(),
        afterCheckpoint: hex(e.afterHash),
        oldBudget: e.oldBudget.toString(),
        newBudget: e.newBudget.toString(),
        reason: e.reason,
        ...(upgrade ? { fromWasm: upgrade.fromWasm, toWasm: upgrade.toWasm, what: describeUpgrade(upgrade) } : {}),
        signed: verifyBytes(key, budgetOverrideSigningBytes(key, e), e.signature),
      };
    });
    if (o.json) {
      process.stdout.write(`${JSON.stringify({ agentId, did: row.did, wasmHash: row.wasmHash, events }, null, 2)}\n`);
    } else {
      const lines = [`lineage of ${agentId} (${row.did}), running WASM ${row.wasmHash.slice(0, 16)}…: ${events.length} events`];
      for (const e of events) {
        const what = e.what ?? `budget ${formatUnits(BigInt(e.oldBudget))} -> ${formatUnits(BigInt(e.newBudget))} (${e.reason})`;
        lines.push(`#${e.seq} ${e.kind} ${e.kind === "code_upgrade" ? "" : `tick ${e.tick}: `}${what}, ${e.signed ? "signed" : "SIGNATURE INVALID"}`);
      }
      // Each on its own line, escaped: a reason is any text the agent's key signed, and events come with
      // imports and migrations (every node that held the agent holds its key).
      process.stdout.write(`${lines.map((l) => printable(l)).join("\n")}\n`);
    }
    return events.every((e) => e.signed) ? 0 : 1;
  });
}
