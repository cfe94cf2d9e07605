// The CLI's tables and one-line answers show text a module or a peer wrote (a module's import names
// in its load failure, a target's refusal message) on the line it belongs to: a line feed in it is
// shown escaped, so it cannot print a row or an outcome of its own that the daemon never reported.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { formatMigration } from "../../src/cli/migrate.js";
import { formatAgents } from "../../src/cli/status.js";
import { ErrorCode } from "../../src/errors.js";
import { remoteError } from "../../src/migration/context.js";
import { startTestNode, stopAllNodes } from "../helpers/node.js";
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
});
