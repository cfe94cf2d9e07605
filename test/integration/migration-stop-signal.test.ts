// The migration service's stop signal lives as long as the node; every stream the service opens
// (price queries every --peer-refresh for every known peer, migrations, status queries) must leave
// nothing on it. On Node 20, AbortSignal.any([.., stop]) adds an entry to the stop signal's internal
// dependant set (kDependantSignals) that is never taken out: one per stream ever opened, for months.
import { afterEach, describe, expect, it } from "vitest";
import { parseTarget } from "../../src/p2p/host.js";
import { startTestNode, stopAllNodes, type TestNode } from "../helpers/node.js";
import { RoguePeer } from "../helpers/rogue.js";

afterEach(stopAllNodes);

const P2P = { listen: "/ip4/127.0.0.1/tcp/0", "peer-refresh": "0" };
/** Enough queries that one entry kept per query stands out from the streams open at any one time. */
const QUERIES = 200;
const OPEN_AT_ONCE = 8;

/** The symbol Node keys a signal's dependant set with, found on a signal AbortSignal.any gave one. */
function dependantsSymbol(): symbol {
  const source = new AbortController().signal;
  AbortSignal.any([source]);
  const sym = Object.getOwnPropertySymbols(source).find((k) => k.description === "kDependantSignals");
  // Without it this test would count nothing and pass whatever the service did.
  if (!sym) throw new Error(`Node ${process.version} keeps no kDependantSignals on a signal: this test cannot count what a signal holds; adapt it to this Node`);
  return sym;
}

/** Entries in the signal's dependant set, as the runtime keeps them (none when it never had a dependant). */
function dependants(signal: AbortSignal): number {
  return (signal as unknown as Record<symbol, Set<unknown> | undefined>)[dependantsSymbol()]?.size ?? 0;
}

const stopSignal = (t: TestNode): AbortSignal => t.node.migration!.stopSignal;

describe("the migration service's stop signal", () => {
  it("holds no entry per price query after hundreds of queries of a live peer", async () => {
    const b = await startTestNode(P2P);
    const a = await startTestNode({ ...P2P, bootstrap: b.node.migration!.addresses()[0]! });
    const target = b.node.migration!.peerId;
    for (let i = 0; i < QUERIES; i++) await a.node.migration!.queryPrice(target);
    expect(a.node.migration!.peers.get(target)?.failures).toBe(0);
    expect(dependants(stopSignal(a))).toBeLessThanOrEqual(OPEN_AT_ONCE);
  });

  it("holds no entry per failed dial of a stranger that connected once and went away", async () => {
    const a = await startTestNode(P2P);
    const stranger = await RoguePeer.start();
    await stranger.p2p.dial(parseTarget(a.node.migration!.addresses()[0]!).addr!);
    await stranger.p2p.stop();
    for (let i = 0; i < QUERIES; i++) await expect(a.node.migration!.queryPrice(stranger.peerId)).rejects.toThrow();
    expect(dependants(stopSignal(a))).toBeLessThanOrEqual(OPEN_AT_ONCE);
  });
});
