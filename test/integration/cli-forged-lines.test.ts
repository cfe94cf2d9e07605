// The CLI's tables and one-line answers show text a module or a peer wrote (a module's import names
// in its load failure, a target's refusal message, a lineage event's reason that came with an import
// or a migration) on the line it belongs to: a line feed in it is shown escaped, so it cannot print a
// row or an outcome of its own that the daemon never reported, and so are the terminal's controls.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { formatMigration } from "../../src/cli/migrate.js";
import { formatAgents } from "../../src/cli/status.js";
import { signBudgetOverride } from "../../src/checkpoint/overrides.js";
import { ErrorCode } from "../../src/errors.js";
import { remoteError } from "../../src/migration/context.js";
import { DB_FILE, SqliteStore } from "../../src/store/sqlite-store.js";
import { dataDirWithHeartbeat, startTestNode, stopAllNodes } from "../helpers/node.js";
import { igord } from "../helpers/process.js";
import { CAPS, watAgent, wat2wasm } from "../helpers/wat.js";

afterEach(stopAllNodes);

/** A row of `igord agents` that no agent of this node has: a running agent far along. */
const FORGED_ROW = "payroll      running      9999  1000.000000  0            -";
/** An outcome line `igord migrate` prints when the agent moved. */
const FORGED_OUTCOME = "heartbeat migrated to 12D3KooWForged via /ip4/10.0.0.9/tcp/4001 at epoch 2.0 (1 attempt(s), 0 fallback(s), 12 ms)";

describe("text from modules and peers in the CLI's output", () => {
  it("igord agents: a module whose import name carries a line feed and a table row is listed on one line, its name escaped", async () => {
    const t = await startTestNode({ "tick-interval": "50ms" }, { watch: true, start: false });
    mkdirSync(t.config.agentsDir, { recursive: true });
    // igor has no such hostcall: the load fails naming the import, in the listing's message.
    const name = `nothing\\0a${FORGED_ROW}`;
    const wasm = await wat2wasm(watAgent({ imports: `(import "igor" "${name}" (func))` }));
    writeFileSync(join(t.config.agentsDir, "sneaky.wasm"), wasm);
    writeFileSync(join(t.config.agentsDir, "sneaky.manifest.json"), JSON.stringify(CAPS()));
    await t.node.start();
    await t.node.whenLoaded();
    const listed = t.node.agentsJson();
    expect(listed.map((a) => a.status)).toEqual(["load_failed"]);
    expect(JSON.stringify(listed)).toContain(`\\n${FORGED_ROW}`);

    const lines = formatAgents(listed).trimEnd().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toBe("failed to load:");
    expect(lines[1]).toMatch(/sneaky\.wasm {2}\[IMPORT_REFUSED\] /);
    expect(lines[1]).toContain(`\\u000a${FORGED_ROW}`);
    expect(lines.some((l) => l.startsWith("payroll"))).toBe(false);
  });

  it("igord migrate: a target's refusal whose message carries a line feed and a success line prints as one line, the outcome it really had", () => {
    // What a target answered, as the source reads it (its code known, its message as sent).
    const error = remoteError({ code: ErrorCode.CapabilityNotOffered, message: `busy\n${FORGED_OUTCOME}` }, "refused by the target");
    const text = formatMigration("heartbeat", { outcome: "reverted", target: "/ip4/10.0.0.9/tcp/4001", peer: null, address: null, attempts: 1, fallbacks: 0, epoch: null, error: { code: error.code, message: error.message }, durationMs: 12 });
    expect(text.split("\n")).toHaveLength(1);
    expect(text).toMatch(/^heartbeat was not migrated \(CAPABILITY_NOT_OFFERED: refused by the target: busy\\u000aheartbeat migrated to /);
  });

  it("igord lineage: a lineage event whose reason carries escape sequences and a line feed (an import's or a migration's: any holder of the agent's key signs one) is listed on its own line, escaped", async () => {
    const data = await dataDirWithHeartbeat(2n);
    // OSC 52 (set the clipboard), clear the screen, then a line feed and a second event of its own.
    const reason = "\x1b]52;c;ZXZpbA==\x07\x1b[2J\n#2 budget_override tick 9: budget 1.000000 -> 1000.000000 (top-up), signed";
    const store = SqliteStore.open(join(data, DB_FILE));
    try {
      const head = store.head("heartbeat")!;
      const fields = { afterHash: head.hash, tick: head.tick, oldBudget: head.budget, newBudget: head.budget, reason };
      store.addLineageEvent("heartbeat", { kind: "import", ...fields, signature: signBudgetOverride(store.identity("heartbeat"), fields) });
    } finally {
      store.close();
    }
    const shown = igord(["lineage", "heartbeat", "--data-dir", data]);
    expect(shown.status).toBe(0);
    const lines = shown.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(/^#1 import tick \d+: .*\\u001b\]52;c;ZXZpbA==\\u0007\\u001b\[2J\\u000a#2 budget_override .*, signed$/);
    // eslint-disable-next-line no-control-regex -- looking for them is the point
    expect(shown.stdout).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
  });
});
