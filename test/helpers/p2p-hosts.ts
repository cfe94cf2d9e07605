// Real libp2p hosts on loopback for tests of the p2p layer: each on a free port, all stopped after each test.
import { afterEach } from "vitest";
import { generateKey } from "../../src/identity/keys.js";
import { P2pHost } from "../../src/p2p/host.js";

/** The hosts the current test started and has not stopped; afterEach stops them. */
export const hosts: P2pHost[] = [];
afterEach(async () => {
  await Promise.all(hosts.splice(0).map((h) => h.stop()));
});

export async function host(): Promise<P2pHost> {
  const h = await P2pHost.start({ key: generateKey(), listen: ["/ip4/127.0.0.1/tcp/0"], bootstrap: [], mdns: false });
  hosts.push(h);
  return h;
}
