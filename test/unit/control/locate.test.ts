// Where a client command sends the daemon's bearer token. Only to an address someone chose (--control,
// IGORD_CONTROL) or the daemon wrote (<data-dir>/control.addr): never to a guessed default, which any
// local user may be listening on while the daemon is down (the token outlives restarts).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ADDRESS_FILE, locateControl } from "../../../src/control/locate.js";
import { ensureControlToken } from "../../../src/control/token.js";
import { tempDir } from "../../helpers/node.js";

function dataDirWithToken(): string {
  const dataDir = join(tempDir(), "data");
  mkdirSync(dataDir, { recursive: true });
  ensureControlToken(dataDir);
  return dataDir;
}

describe("locating the daemon's control API", () => {
  it("with no --control, no IGORD_CONTROL and no control.addr (no daemon serving this data dir) it refuses CONTROL_UNAVAILABLE, naming the missing file, instead of the default address", () => {
    const dataDir = dataDirWithToken();
    expect(() => locateControl({ dataDir }, {})).toThrow(expect.objectContaining({ code: "CONTROL_UNAVAILABLE", message: expect.stringContaining(`no ${join(dataDir, ADDRESS_FILE)}`) }));
  });

  it("--control wins over IGORD_CONTROL, which wins over the address the daemon wrote", () => {
    const dataDir = dataDirWithToken();
    writeFileSync(join(dataDir, ADDRESS_FILE), "127.0.0.1:40001\n");
    expect(locateControl({ dataDir }, {}).control).toEqual({ host: "127.0.0.1", port: 40001 });
    expect(locateControl({ dataDir }, { IGORD_CONTROL: "127.0.0.1:40002" }).control).toEqual({ host: "127.0.0.1", port: 40002 });
    expect(locateControl({ dataDir, control: "127.0.0.1:40003" }, { IGORD_CONTROL: "127.0.0.1:40002" }).control).toEqual({ host: "127.0.0.1", port: 40003 });
  });
});
