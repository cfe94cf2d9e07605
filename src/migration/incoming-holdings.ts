// What the node's incoming migrations hold at once, so a peer cannot make it hold more than its
// limits: package bytes node-wide (MAX_CONCURRENT_PACKAGES × --max-package-size), and per peer the
// bytes announced and reserved (MAX_PACKAGES_PER_PEER × --max-package-size) and the agents being received.

/** Package bytes and agents a node's receptions hold right now: node-wide and per peer. */
export class IncomingHoldings {
  /** Package bytes that have arrived and are held right now, node-wide (MAX_CONCURRENT_PACKAGES × --max-package-size). */
  heldBytes = 0;
  /** Per peer: package bytes announced and reserved, and agents being received from it. */
  private readonly peers = new Map<string, { reserved: number; receiving: number }>();

  peer(id: string): { reserved: number; receiving: number } {
    let p = this.peers.get(id);
    if (!p) this.peers.set(id, (p = { reserved: 0, receiving: 0 }));
    return p;
  }

  /** Agents being received from `id` right now. */
  receivingFrom(id: string): number {
    return this.peers.get(id)?.receiving ?? 0;
  }

  release(id: string, reserved: number, receiving: number): void {
    const p = this.peer(id);
    p.reserved -= reserved;
    p.receiving -= receiving;
    if (p.reserved <= 0 && p.receiving <= 0) this.peers.delete(id);
  }
}
