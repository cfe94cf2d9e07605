// Real libp2p hosts on loopback for tests of the p2p layer: each on a free port, stopped when the test
// that started it ends (onTestFinished: a helper module is loaded once per worker, isolate: false, so
// an afterEach it registered would run for the first file that imported it only).
import { onTestFinished } from "vitest";
import { generateKey } from "../../src/identity/keys.js";
import { P2pHost } from "../../src/p2p/host.js";

/** The hosts the current test started and has not stopped itself. */
export const hosts: P2pHost[] = [];

export async function host(): Promise<P2pHost> {
  const h = await P2pHost.start({ key: generateKey(), listen: ["/ip4/127.0.0.1/tcp/0"], bootstrap: [], mdns: false });
  hosts.push(h);
  onTestFinished(async () => {
    const i = hosts.indexOf(h);
    if (i >= 0) await hosts.splice(i, 1)[0]?.stop();
  });
  return h;
}
