import { describe, expect, it } from "vitest";
import { MAX_PEER_FAILURES, PeerRegistry } from "../../../src/p2p/peer-registry.js";

function registry(): PeerRegistry {
  const r = new PeerRegistry();
  r.announced("cheap-no-rand", { price: 10n, capabilities: ["clock", "log"], acceptsMigrations: true }, 1);
  r.announced("cheap", { price: 20n, capabilities: ["clock", "log", "rand"], acceptsMigrations: true }, 1);
  r.announced("pricey", { price: 500n, capabilities: ["clock", "log", "rand"], acceptsMigrations: true }, 1);
  r.announced("mid-flaky", { price: 30n, capabilities: ["clock", "log", "rand"], acceptsMigrations: true }, 1);
  r.failed("mid-flaky");
  r.upsert("unknown", ["/ip4/127.0.0.1/tcp/1/p2p/unknown"]);
  r.announced("closed", { price: 1n, capabilities: ["clock", "log", "rand"], acceptsMigrations: false }, 1);
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
