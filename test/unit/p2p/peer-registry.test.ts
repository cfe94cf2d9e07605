import { describe, expect, it } from "vitest";
import { MAX_KNOWN_PEERS, MAX_PEER_ADDRS, MAX_PEER_FAILURES, PeerRegistry } from "../../../src/p2p/peer-registry.js";

function registry(): PeerRegistry {
  const r = new PeerRegistry();
  r.announced("cheap-no-rand", { price: 10n, capabilities: ["clock", "log"], acceptsMigrations: true }, 1);
  r.announced("cheap", { price: 20n, capabilities: ["clock", "log", "rand"], acceptsMigrations: true }, 1);
  r.announced("pricey", { price: 500n, capabilities: ["clock", "log", "rand"], acceptsMigrations: true }, 1);
  r.announced("mid-flaky", { price: 30n, capabilities: ["clock", "log", "rand"], acceptsMigrations: true }, 1);
  r.failed("mid-flaky");
  r.upsert("unknown", ["/ip4/127.0.0.1/tcp/1/p2p/unknown"]);
  r.announced("closed", { price: 1n, capabilities: ["clock", "log", "rand"], acceptsMigrations: false }, 1);
  for (const p of r.list()) r.vouch(p.id);
  return r;
}

describe("peer registry candidates", () => {
  it("orders capable → within the price ceiling → healthy → cheapest, and leaves out the incapable, too dear and closed", () => {
    const ids = registry()
      .candidates({ required: ["clock", "rand"], maxPrice: 100n, exclude: new Set() })
      .map((p) => p.id);
    expect(ids).toEqual(["cheap", "mid-flaky", "unknown"]);
  });

  it("without a ceiling every capable peer is a candidate; excluded peers never are", () => {
    const ids = registry()
      .candidates({ required: ["rand"], maxPrice: null, exclude: new Set(["cheap"]) })
      .map((p) => p.id);
    expect(ids).toEqual(["pricey", "mid-flaky", "unknown"]); // healthy before cheaper
  });

  it("a peer that keeps failing drops out until it answers again", () => {
    const r = registry();
    for (let i = 0; i < MAX_PEER_FAILURES; i++) r.failed("cheap");
    expect(r.candidates({ required: [], maxPrice: null, exclude: new Set() }).map((p) => p.id)).not.toContain("cheap");
    r.succeeded("cheap", 2);
    expect(r.candidates({ required: [], maxPrice: null, exclude: new Set() }).map((p) => p.id)).toContain("cheap");
  });
});

describe("peer registry: only vouched-for peers are candidates", () => {
  it("a peer that connected and announced the lowest price is no candidate until the operator vouches for it", () => {
    const r = registry();
    r.announced("stranger", { price: 0n, capabilities: ["clock", "log", "rand"], acceptsMigrations: true }, 2);
    r.succeeded("stranger", 2, 0.1);
    expect(r.candidates({ required: [], maxPrice: null, exclude: new Set() }).map((p) => p.id)).not.toContain("stranger");
    r.vouch("stranger");
    expect(r.candidates({ required: [], maxPrice: null, exclude: new Set() })[0]?.id).toBe("stranger");
  });

  it("strangers coming under fresh ids never push a vouched-for peer out, however long it has not answered", () => {
    const r = new PeerRegistry();
    r.vouch("bootstrap-peer", ["/ip4/10.0.0.9/tcp/1/p2p/bootstrap-peer"]);
    for (let i = 0; i < 3 * MAX_KNOWN_PEERS; i++) r.succeeded(`stranger-${i}`, i + 1);
    expect(r.get("bootstrap-peer")?.vouched).toBe(true);
  });
});

describe("peer registry bounds", () => {
  it("holds at most MAX_KNOWN_PEERS: peers that connect once under fresh ids (never heard from) make room for each other, and peers that answered stay", () => {
    const r = registry();
    const answered = r.list().filter((p) => p.lastSeen !== null).map((p) => p.id);
    for (let i = 0; i < 3 * MAX_KNOWN_PEERS; i++) r.upsert(`fresh-${i}`, [`/ip4/10.0.0.1/tcp/${i}`]);
    expect(r.list().length).toBeLessThanOrEqual(MAX_KNOWN_PEERS);
    for (const id of answered) expect(r.get(id), id).toBeDefined();
    // The newest comer is there (it may be a target the operator just named).
    expect(r.get(`fresh-${3 * MAX_KNOWN_PEERS - 1}`)).toBeDefined();
  });

  it("keeps at most MAX_PEER_ADDRS addresses a peer, the newest", () => {
    const r = new PeerRegistry();
    for (let i = 0; i < 10 * MAX_PEER_ADDRS; i++) r.upsert("many", [`/ip4/10.0.0.1/tcp/${i}`]);
    const addrs = r.get("many")!.addrs;
    expect(addrs).toHaveLength(MAX_PEER_ADDRS);
    expect(addrs.at(-1)).toBe(`/ip4/10.0.0.1/tcp/${10 * MAX_PEER_ADDRS - 1}`);
  });
});
