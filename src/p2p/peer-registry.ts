// Known peers: addresses, health (ping round trip, consecutive failures, last seen), and the price
// and capabilities each last announced. Candidates for a migration come from here, ordered capable
// → within the agent's price ceiling → healthy → cheapest, and only among the peers the operator
// vouched for: an agent goes with its private key, and any peer may connect and announce itself.

export interface PeerInfo {
  id: string;
  addrs: string[];
  /** Microcents per second; null until the peer answered a price query. */
  price: bigint | null;
  /** null until the peer announced them. */
  capabilities: string[] | null;
  acceptsMigrations: boolean | null;
  lastSeen: number | null;
  failures: number;
  rttMs: number | null;
  /**
   * The operator named it (--bootstrap, --trusted-peer) or let the node find it (--mdns, on the
   * local network): it may be chosen for a migration without --to. A peer that only connected, or
   * answered a price query, never is.
   */
  vouched: boolean;
}

export interface CandidateQuery {
  required: readonly string[];
  /** The agent's max_price_per_second; null = no ceiling. */
  maxPrice: bigint | null;
  exclude: ReadonlySet<string>;
}

/** Peers that failed this many times in a row are left out of candidate lists. */
export const MAX_PEER_FAILURES = 5;
/**
 * Peers remembered at most. Any peer that connects is remembered, and peer ids cost nothing: one
 * that comes back under a fresh id each time grew the registry (and the refresh, which asks every
 * peer) without end. Past it, a new peer takes the place of the least useful one (upsert).
 */
export const MAX_KNOWN_PEERS = 1024;
/** Addresses kept a peer, the newest: discovery may announce any number. */
export const MAX_PEER_ADDRS = 16;

/** Whether `a` is less worth keeping than `b`: not vouched for (strangers cannot push out the operator's peers), never heard from, then more failures, then heard from longer ago. */
function lessUseful(a: PeerInfo, b: PeerInfo): boolean {
  if (a.vouched !== b.vouched) return !a.vouched;
  if ((a.lastSeen === null) !== (b.lastSeen === null)) return a.lastSeen === null;
  if (a.failures !== b.failures) return a.failures > b.failures;
  return (a.lastSeen ?? 0) < (b.lastSeen ?? 0);
}

export class PeerRegistry {
  private readonly peers = new Map<string, PeerInfo>();

  upsert(id: string, addrs: readonly string[] = []): PeerInfo {
    let p = this.peers.get(id);
    if (!p) {
      if (this.peers.size >= MAX_KNOWN_PEERS) this.forgetLeastUseful();
      p = { id, addrs: [], price: null, capabilities: null, acceptsMigrations: null, lastSeen: null, failures: 0, rttMs: null, vouched: false };
      this.peers.set(id, p);
    }
    for (const a of addrs) {
      if (p.addrs.includes(a)) continue;
      p.addrs.push(a);
      if (p.addrs.length > MAX_PEER_ADDRS) p.addrs.shift();
    }
    return p;
  }

  /** Among equals the one remembered first goes (a Map keeps insertion order). */
  private forgetLeastUseful(): void {
    let worst: PeerInfo | null = null;
    for (const p of this.peers.values()) if (worst === null || lessUseful(p, worst)) worst = p;
    if (worst) this.peers.delete(worst.id);
  }

  /** Marks a peer the operator vouched for (see PeerInfo.vouched): a candidate for migrations. */
  vouch(id: string, addrs: readonly string[] = []): PeerInfo {
    const p = this.upsert(id, addrs);
    p.vouched = true;
    return p;
  }

  get(id: string): PeerInfo | undefined {
    return this.peers.get(id);
  }

  list(): PeerInfo[] {
    return [...this.peers.values()].sort((a, b) => a.id.localeCompare(b.id));
  }

  announced(id: string, a: { price: bigint; capabilities: string[]; acceptsMigrations: boolean }, nowMs: number): void {
    const p = this.upsert(id);
    p.price = a.price;
    p.capabilities = [...a.capabilities].sort();
    p.acceptsMigrations = a.acceptsMigrations;
    p.lastSeen = nowMs;
    p.failures = 0;
  }

  succeeded(id: string, nowMs: number, rttMs?: number): void {
    const p = this.upsert(id);
    p.lastSeen = nowMs;
    p.failures = 0;
    if (rttMs !== undefined) p.rttMs = rttMs;
  }

  failed(id: string): void {
    this.upsert(id).failures++;
  }

  candidates(q: CandidateQuery): PeerInfo[] {
    const rank = (p: PeerInfo): number[] => {
      const capable = p.capabilities === null ? 1 : 0;
      const withinPrice = q.maxPrice === null || p.price !== null ? 0 : 1;
      return [capable, withinPrice, p.failures];
    };
    return this.list()
      .filter((p) => p.vouched && !q.exclude.has(p.id) && p.failures < MAX_PEER_FAILURES && p.acceptsMigrations !== false)
      .filter((p) => p.capabilities === null || q.required.every((c) => p.capabilities?.includes(c)))
      .filter((p) => q.maxPrice === null || p.price === null || p.price <= q.maxPrice)
      .sort((a, b) => {
        const ra = rank(a);
        const rb = rank(b);
        for (let i = 0; i < ra.length; i++) if (ra[i] !== rb[i]) return (ra[i] as number) - (rb[i] as number);
        if (a.price !== b.price) return a.price === null ? 1 : b.price === null ? -1 : a.price < b.price ? -1 : 1;
        return (b.lastSeen ?? 0) - (a.lastSeen ?? 0);
      });
  }
}
