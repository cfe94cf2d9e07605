// A loopback TCP proxy that sits between two igord nodes (the dialling node is given the proxy's
// address with the target's /p2p/<peer id>; Noise authenticates the peer through it) and breaks the
// network on demand: delay, stall (stop forwarding without closing: the sender's socket fills and
// blocks as on a partitioned link), cut (FIN or RST), throttle, and refuse or black-hole new
// connections. A fault can be armed to fire once a direction has carried N bytes, or at a moment the
// test picks (a log line, a hop's phase). Stopped when the test that started it ends.
import { createServer, type Server, Socket } from "node:net";
import { onTestFinished } from "vitest";

/** "up": from the dialling node to the target; "down": the target's answers. */
export type Direction = "up" | "down";
export type Directions = Direction | "both";
export type CutKind = "fin" | "rst";
/** What happens to a connection made while the proxy is partitioned: refused at once, or accepted and never answered. */
export type NewConnections = "forward" | "refuse" | "blackhole";

const dirsOf = (d: Directions): Direction[] => (d === "both" ? ["up", "down"] : [d]);

interface Pipe {
  /** Bytes forwarded so far. */
  bytes: number;
  stalled: boolean;
  /** Chunks read while stalled (reading is paused too, so this stays small). */
  held: Buffer[];
}

class Link {
  readonly pipes: Record<Direction, Pipe> = { up: { bytes: 0, stalled: false, held: [] }, down: { bytes: 0, stalled: false, held: [] } };
  closed = false;
  /** Each direction's chunks go through one chain, in order (a delay or throttle holds the ones behind it). */
  private readonly chains: Record<Direction, Promise<void>> = { up: Promise.resolve(), down: Promise.resolve() };

  constructor(
    readonly proxy: FaultProxy,
    readonly client: Socket,
    readonly upstream: Socket,
  ) {}

  from(d: Direction): Socket {
    return d === "up" ? this.client : this.upstream;
  }

  to(d: Direction): Socket {
    return d === "up" ? this.upstream : this.client;
  }

  /** Forwards `chunk` read in direction `d`, honouring stalls, delays, throttles and armed faults. */
  async carry(d: Direction, chunk: Buffer): Promise<void> {
    const p = this.pipes[d];
    let rest = chunk;
    while (rest.length > 0 && !this.closed) {
      if (p.stalled) {
        p.held.push(rest);
        this.from(d).pause();
        return;
      }
      const armed = this.proxy.armedFor(d);
      let n = rest.length;
      if (armed) n = Math.min(n, Math.max(0, armed.at - this.proxy.bytes(d)));
      if (this.proxy.throttleBytesPerSec > 0) n = Math.min(n, Math.max(1, Math.floor(this.proxy.throttleBytesPerSec / 20)));
      if (n > 0) {
        const piece = rest.subarray(0, n);
        rest = rest.subarray(n);
        if (this.proxy.delayMs > 0) await sleep(this.proxy.delayMs);
        if (this.proxy.throttleBytesPerSec > 0) await sleep(Math.ceil((piece.length / this.proxy.throttleBytesPerSec) * 1000));
        if (this.closed) return;
        p.bytes += piece.length;
        this.proxy.counted(d, piece.length);
        this.to(d).write(piece);
      }
      if (armed && this.proxy.bytes(d) >= armed.at) this.proxy.fire(armed, this);
    }
  }

  /** Queues a chunk read in direction `d`; reading pauses until it went (or stays paused while stalled). */
  enqueue(d: Direction, chunk: Buffer): void {
    this.from(d).pause();
    this.chains[d] = this.chains[d].then(async () => {
      await this.carry(d, chunk);
      if (!this.pipes[d].stalled && !this.closed) this.from(d).resume();
    });
  }

  /** The end of direction `d`'s stream, passed on behind its last chunk. */
  ended(d: Direction): void {
    this.chains[d] = this.chains[d].then(() => {
      if (!this.closed) this.to(d).end();
    });
  }

  stall(d: Direction): void {
    this.pipes[d].stalled = true;
  }

  resume(d: Direction): void {
    const p = this.pipes[d];
    if (!p.stalled) return;
    p.stalled = false;
    const held = p.held.splice(0);
    this.chains[d] = this.chains[d].then(async () => {
      for (const c of held) await this.carry(d, c);
      if (!this.pipes[d].stalled && !this.closed) this.from(d).resume();
    });
  }

  cut(d: Directions, how: CutKind): void {
    for (const dir of dirsOf(d)) {
      if (how === "rst") {
        this.closed = true;
        this.client.resetAndDestroy();
        this.upstream.resetAndDestroy();
        return;
      }
      // FIN one way: the receiving side sees its peer end its writes.
      this.to(dir).end();
    }
    if (d === "both") this.closed = true;
  }

  destroy(): void {
    this.closed = true;
    this.client.destroy();
    this.upstream.destroy();
  }
}

interface Armed {
  dir: Direction;
  /** Fires once this direction has carried this many bytes in all (the proxy's count when armed, plus the bytes asked for). */
  at: number;
  action: (link: Link) => void;
  fired: boolean;
  resolve: () => void;
}

export class FaultProxy {
  private readonly links = new Set<Link>();
  private readonly armed: Armed[] = [];
  private readonly totals: Record<Direction, number> = { up: 0, down: 0 };
  private readonly waiters: { dir: Direction; bytes: number; resolve: () => void }[] = [];
  delayMs = 0;
  throttleBytesPerSec = 0;
  newConnections: NewConnections = "forward";
  /** Connections accepted so far (black-holed ones included). */
  accepted = 0;
  private readonly blackholed = new Set<Socket>();
  /** Stalls a new connection gets from its first byte (a partition that also holds new links). */
  private readonly stalledForNew = new Set<Direction>();

  private constructor(
    private readonly server: Server,
    private upstreamPort: number,
    readonly port: number,
  ) {}

  /** A proxy on a free loopback port forwarding to 127.0.0.1:`upstreamPort`; closed when the test ends. */
  static async start(upstreamPort: number): Promise<FaultProxy> {
    let self: FaultProxy | null = null;
    const server = createServer({ pauseOnConnect: true }, (client) => self?.accept(client));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as { port: number }).port;
    self = new FaultProxy(server, upstreamPort, port);
    const proxy = self;
    onTestFinished(() => proxy.close());
    return proxy;
  }

  /** New connections go to this port from now (a target restarted on another port, behind the same address). */
  retarget(upstreamPort: number): void {
    this.upstreamPort = upstreamPort;
  }

  /** The multiaddr a node dials to reach `peerId` through this proxy. */
  address(peerId: string): string {
    return `/ip4/127.0.0.1/tcp/${this.port}/p2p/${peerId}`;
  }

  /** Open connections forwarded now. */
  get open(): number {
    return [...this.links].filter((l) => !l.closed).length;
  }

  bytes(d: Direction): number {
    return this.totals[d];
  }

  private accept(client: Socket): void {
    this.accepted++;
    client.on("error", () => undefined);
    if (this.newConnections === "refuse") {
      client.resetAndDestroy();
      return;
    }
    if (this.newConnections === "blackhole") {
      // Accepted, never answered, never closed: a dial waits for its handshake until it gives up.
      this.blackholed.add(client);
      client.on("close", () => this.blackholed.delete(client));
      return;
    }
    const upstream = new Socket();
    upstream.on("error", () => undefined);
    const link = new Link(this, client, upstream);
    this.links.add(link);
    for (const d of this.stalledForNew) link.stall(d);
    const done = (): void => {
      link.destroy();
      this.links.delete(link);
    };
    client.on("close", done);
    upstream.on("close", done);
    upstream.connect(this.upstreamPort, "127.0.0.1", () => {
      for (const d of ["up", "down"] as const) {
        link.from(d).on("data", (chunk: Buffer) => link.enqueue(d, chunk));
        link.from(d).on("end", () => link.ended(d));
      }
      client.resume();
    });
  }

  /** @internal The armed fault of direction `d` not fired yet. */
  armedFor(d: Direction): Armed | undefined {
    return this.armed.find((a) => a.dir === d && !a.fired);
  }

  /** @internal */
  fire(a: Armed, link: Link): void {
    a.fired = true;
    a.action(link);
    a.resolve();
  }

  /** @internal */
  counted(d: Direction, n: number): void {
    this.totals[d] += n;
    for (const w of this.waiters.filter((x) => x.dir === d && this.totals[d] >= x.bytes)) {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve();
    }
  }

  /** Resolves once direction `d` has carried `bytes` in all (over every connection). */
  carried(d: Direction, bytes: number): Promise<void> {
    if (this.totals[d] >= bytes) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ dir: d, bytes, resolve }));
  }

  /**
   * Stalls direction(s) `also` of the connection that carries direction `d`'s `after`-th byte from
   * now (over every connection), forwarding that byte and holding every later one. Resolves when it fired.
   */
  stallAfter(d: Direction, after: number, also: Directions = d): Promise<void> {
    return this.arm(d, after, (link) => {
      for (const x of dirsOf(also)) link.stall(x);
    });
  }

  /** Cuts the connection that carries direction `d`'s `after`-th byte from now, once that byte went. */
  cutAfter(d: Direction, after: number, how: CutKind = "rst"): Promise<void> {
    return this.arm(d, after, (link) => link.cut("both", how));
  }

  /** Runs `action` on the connection that carries direction `d`'s `after`-th byte from now, once it went. */
  private arm(d: Direction, after: number, action: (link: Link) => void): Promise<void> {
    return new Promise((resolve) => this.armed.push({ dir: d, at: this.totals[d] + after, action, fired: false, resolve }));
  }

  /** Drops the armed faults that have not fired (each one's promise resolves). */
  disarm(): void {
    for (const a of this.armed.splice(0)) a.resolve();
  }

  /** Stalls every open connection (and, with `newOnes`, every later one) in direction(s) `d`. */
  stall(d: Directions = "both", newOnes = false): void {
    for (const l of this.links) for (const x of dirsOf(d)) l.stall(x);
    if (newOnes) for (const x of dirsOf(d)) this.stalledForNew.add(x);
  }

  /** Forwards again what was stalled (held bytes first), on open and new connections. */
  resume(d: Directions = "both"): void {
    for (const x of dirsOf(d)) this.stalledForNew.delete(x);
    for (const l of this.links) for (const x of dirsOf(d)) if (l.pipes[x].stalled) l.resume(x);
  }

  /** Cuts every open connection: RST (both sockets reset) or FIN in direction(s) `d`. */
  cut(how: CutKind = "rst", d: Directions = "both"): void {
    for (const l of this.links) l.cut(d, how);
  }

  /** A partition: open connections stalled, new ones refused or black-holed, until heal(). */
  partition(newConnections: Exclude<NewConnections, "forward"> = "blackhole"): void {
    this.newConnections = newConnections;
    this.stall("both");
  }

  /** Ends a partition: stalled connections forward again, new ones are forwarded. */
  heal(): void {
    this.newConnections = "forward";
    for (const s of this.blackholed) s.destroy();
    this.resume("both");
  }

  async close(): Promise<void> {
    for (const a of this.armed) a.resolve();
    for (const l of this.links) l.destroy();
    for (const s of this.blackholed) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
