// Client commands find their daemon: --control > IGORD_CONTROL > <data-dir>/control.addr (written by
// the daemon with the address it actually bound), the data dir from --data-dir > IGORD_DATA_DIR >
// ./data; when they cannot reach it, the error says where the address and the data dir came from.
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { tempDir } from "../helpers/node.js";
import { igord, killAll, startDaemon } from "../helpers/process.js";

afterEach(killAll);

const ENV: NodeJS.ProcessEnv = { ...process.env, IGORD_LISTEN: "off", IGORD_CONTROL: "", IGORD_DATA_DIR: "" };

describe("finding the daemon", () => {
  // Acceptance 42: igord status finds its daemon from IGORD_DATA_DIR alone.
  it("status and agents find a daemon on a random control port through its data dir alone, and say where they looked when it is gone", async () => {
    const dir = tempDir();
    const dataDir = join(dir, "data");
    const d = startDaemon(["--agents-dir", join(dir, "agents"), "--data-dir", dataDir, "--control", "127.0.0.1:0"], ENV);
    const listening = await d.waitFor((l) => l.event === "control_listening");
    const file = join(dataDir, "control.addr");
    expect(readFileSync(file, "utf8").trim()).toBe(`127.0.0.1:${listening.port as number}`);
    expect(statSync(file).mode & 0o777).toBe(0o600);

    const byFlag = igord(["status", "--data-dir", dataDir, "--json"], ENV);
    expect(byFlag.status).toBe(0);
    expect(JSON.parse(byFlag.stdout).pid).toBe(d.child.pid);
    const byEnv = igord(["agents", "--json"], { ...ENV, IGORD_DATA_DIR: dataDir });
    expect(byEnv.status).toBe(0);
    // igord status from IGORD_DATA_DIR alone (scenario 42).
    const statusByEnv = igord(["status", "--json"], { ...ENV, IGORD_DATA_DIR: dataDir });
    expect(statusByEnv.status).toBe(0);
    expect(JSON.parse(statusByEnv.stdout).pid).toBe(d.child.pid);

    // IGORD_CONTROL wins over the file; a wrong one is named in the error.
    const wrong = igord(["status", "--data-dir", dataDir], { ...ENV, IGORD_CONTROL: "127.0.0.1:1" });
    expect(wrong.status).toBe(1);
    expect(wrong.stderr).toContain("control address from IGORD_CONTROL=127.0.0.1:1");
    expect(wrong.stderr).toContain(`data dir from --data-dir ${dataDir}`);

    d.child.kill("SIGINT");
    expect(await d.exit).toBe(0);
    expect(existsSync(file)).toBe(false);
    const gone = igord(["status"], { ...ENV, IGORD_DATA_DIR: dataDir });
    expect(gone.status).toBe(1);
    expect(gone.stderr).toContain(`no ${file}`);
    expect(gone.stderr).toContain(`data dir from IGORD_DATA_DIR=${dataDir}`);
  });
});
