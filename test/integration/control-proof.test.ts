// A client command sends the daemon's bearer token only to a server that first proves it holds that
// token for the very address the client reached. A daemon that died leaves <data-dir>/control.addr
// behind; any local user may then listen on that port, and the token outlives restarts.
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ADDRESS_FILE } from "../../src/control/locate.js";
import { ensureControlToken } from "../../src/control/token.js";
import { tempDir } from "../helpers/node.js";
import { igordAsync, killAll, startDaemon } from "../helpers/process.js";

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  killAll();
});

const ENV: NodeJS.ProcessEnv = { ...process.env, IGORD_LISTEN: "off", IGORD_CONTROL: "", IGORD_DATA_DIR: "" };

/** A server on port 0 standing where a dead daemon listened; `answer` serves each request. Records every Authorization header it sees. */
async function impostor(answer: (req: IncomingMessage) => Promise<{ status: number; body: string }>): Promise<{ port: number; tokensSeen: string[] }> {
  const tokensSeen: string[] = [];
  const server = createServer((req, res) => {
    if (req.headers.authorization) tokensSeen.push(req.headers.authorization);
    answer(req).then(
      (a) => res.writeHead(a.status, { "content-type": "application/json" }).end(a.body),
      () => res.writeHead(500).end("{}"),
    );
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { port: (server.address() as AddressInfo).port, tokensSeen };
}

/** The same request path sent on to the real daemon's control API, its answer returned as is. */
function relay(port: number, req: IncomingMessage): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const out = request({ host: "127.0.0.1", port, path: req.url, method: req.method }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    out.on("error", reject);
    out.end();
  });
}

describe("the control token goes only to a server that proves it holds it", () => {
  it("a server left listening where control.addr points (a dead daemon's port) gets no token, whatever it answers, even relaying the proof request to the real daemon on another port", async () => {
    const dataDir = join(tempDir(), "data");
    mkdirSync(dataDir, { recursive: true });
    ensureControlToken(dataDir);
    // The real daemon, on another port of this data dir's token (it left the old address behind).
    const d = startDaemon(["--agents-dir", join(dataDir, "..", "agents"), "--data-dir", dataDir, "--control", "127.0.0.1:0"], ENV);
    const real = Number((await d.waitFor((l) => l.event === "control_listening")).port);

    const plain = await impostor(() => Promise.resolve({ status: 200, body: JSON.stringify({ proof: "00".repeat(32), pid: 1 }) }));
    writeFileSync(join(dataDir, ADDRESS_FILE), `127.0.0.1:${plain.port}\n`);
    const r1 = await igordAsync(["status", "--data-dir", dataDir], ENV);
    expect(r1.status).toBe(1);
    expect(r1.stderr).toContain("did not prove");
    expect(plain.tokensSeen).toEqual([]);

    const relaying = await impostor((req) => relay(real, req));
    writeFileSync(join(dataDir, ADDRESS_FILE), `127.0.0.1:${relaying.port}\n`);
    const r2 = await igordAsync(["status", "--data-dir", dataDir], ENV);
    expect(r2.status).toBe(1);
    expect(r2.stderr).toContain("did not prove");
    expect(relaying.tokensSeen).toEqual([]);

    // The real daemon proves itself and is answered as before.
    writeFileSync(join(dataDir, ADDRESS_FILE), `127.0.0.1:${real}\n`);
    const r3 = await igordAsync(["status", "--data-dir", dataDir], ENV);
    expect(r3.stderr).toBe("");
    expect(r3.status).toBe(0);
  });
});
