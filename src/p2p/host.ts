// The node's libp2p host: TCP + Noise + Yamux, identify and ping, optional mDNS and bootstrap
// discovery. Its peer id is derived from the node's persistent Ed25519 key (the key that signs
// receipts), so a node keeps its identity on the network across restarts.
import { setMaxListeners } from "node:events";
import type { Libp2p, PeerId } from "@libp2p/interface";
import type { Multiaddr } from "@multiformats/multiaddr";
import { ErrorCode, IgordError } from "../errors.js";
import type { Ed25519Key } from "../identity/keys.js";
import { FrameChannel, MAX_FRAME_BYTES } from "./frames.js";
import { UnfinishedFrames } from "./unfinished-frames.js";
import { bootstrap, createLibp2p, generateKeyPairFromSeed, identify, mdns, multiaddr, peerIdFromString, ping, tcp } from "./libp2p-modules.js";
import { nodeNoise } from "./node-noise.js";
import { yamuxHalfWindow } from "./yamux-window.js";

/**
 * Inbound connections accepted per second from one remote host. libp2p's default (5) refuses the
 * sixth dial in a second, which a burst of migrations between two nodes reaches at once.
 */
export const INBOUND_CONNECTIONS_PER_SECOND = 100;
/** A dial that takes longer is a failed attempt (retried with backoff). */
export const DIAL_TIMEOUT_MS = 5_000;
/** How long a stopping node waits for a connection's streams to close before it aborts them (libp2p's own stop waits as long). */
export const CONNECTION_CLOSE_TIMEOUT_MS = 500;

export interface HostOptions {
  key: Ed25519Key;
  listen: readonly string[];
  bootstrap: readonly string[];
  mdns: boolean;
  /** A peer mDNS found on the local network (with --mdns): the operator let the node find it. */
  onLocalPeer?: (peerId: string) => void;
}

export type IgordLibp2p = Libp2p<{ identify: ReturnType<ReturnType<typeof identify>>; ping: ReturnType<ReturnType<typeof ping>> }>;

export async function startHost(o: HostOptions): Promise<IgordLibp2p> {
  for (const a of [...o.listen, ...o.bootstrap]) parseMultiaddr(a);
  const privateKey = await generateKeyPairFromSeed("Ed25519", o.key.seed);
  const peerDiscovery = [
    ...(o.bootstrap.length > 0 ? [bootstrap({ list: [...o.bootstrap] })] : []),
    ...(o.mdns ? [reportingMdns(o.onLocalPeer)] : []),
  ];
  try {
    return (await createLibp2p({
      privateKey,
      addresses: { listen: [...o.listen] },
      transports: [tcp()],
      connectionEncrypters: [nodeNoise()],
      streamMuxers: [yamuxHalfWindow()],
      peerDiscovery,
      connectionManager: { inboundConnectionThreshold: INBOUND_CONNECTIONS_PER_SECOND, dialTimeout: DIAL_TIMEOUT_MS },
      services: { identify: identify(), ping: ping() },
    })) as IgordLibp2p;
  } catch (e) {
    // libp2p's message lists every address with a stack trace; keep the reasons.
    const reasons = (e as Error).message
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l.startsWith("/") || l.includes("Error:"))
      .map((l) => l.replace(/^.*Error: /, ""));
    const inUse = reasons.some((r) => r.includes("EADDRINUSE")) ? " (another node on this address? --listen another address, or --listen off to run without p2p)" : "";
    throw new IgordError(ErrorCode.P2pUnavailable, `cannot start the p2p host on ${o.listen.join(", ")}: ${reasons.length > 0 ? reasons.join("; ") : (e as Error).message}${inUse}`, {
      cause: e,
    });
  }
}

/**
 * libp2p's mDNS discovery, its finds also told to `found`: libp2p's own `peer:discovery` event
 * comes for every peer new to its peer store, one that only connected included, so it cannot say
 * which peers mDNS found.
 */
function reportingMdns(found: ((peerId: string) => void) | undefined): ReturnType<typeof mdns> {
  const make = mdns();
  return (components) => {
    const discovery = make(components);
    if (found) discovery.addEventListener("peer", (e) => found(e.detail.id.toString()));
    return discovery;
  };
}

export function parseMultiaddr(text: string): Multiaddr {
  try {
    return multiaddr(text);
  } catch (e) {
    throw new IgordError(ErrorCode.PeerAddressInvalid, `"${text}" is not a valid multiaddr: ${(e as Error).message}`);
  }
}

/**
 * Parsed peer ids and targets kept by their text, at most this many of each (oldest dropped first).
 * A hop parsed its target and the peer's id four to six times (base58, multihash, the public key:
 * ~0.25 ms of main-thread CPU per hop in the profile); both are immutable values.
 */
export const PARSED_PEER_CACHE_SIZE = 1_024;

export type ParsedTarget = Readonly<{ peerId: PeerId; addr: Multiaddr | null }>;

const parsedTargets = new Map<string, ParsedTarget>();
const parsedPeerIds = new Map<string, PeerId>();

function remember<T>(cache: Map<string, T>, text: string, value: T): T {
  if (cache.size >= PARSED_PEER_CACHE_SIZE) cache.delete(cache.keys().next().value as string);
  cache.set(text, value);
  return value;
}

/** A dial target given by an operator: a multiaddr (with /p2p/<id>) or a bare peer id. */
export function parseTarget(text: string): ParsedTarget {
  const known = parsedTargets.get(text);
  if (known) return known;
  if (text.startsWith("/")) {
    const addr = parseMultiaddr(text);
    const id = addr.getComponents().find((c) => c.name === "p2p")?.value;
    if (!id) throw new IgordError(ErrorCode.PeerAddressInvalid, `${text} has no /p2p/<peer-id> part; the target's identity must be known`);
    return remember(parsedTargets, text, Object.freeze({ peerId: parsePeerId(id), addr }));
  }
  return remember(parsedTargets, text, Object.freeze({ peerId: parsePeerId(text), addr: null }));
}

export function parsePeerId(text: string): PeerId {
  const known = parsedPeerIds.get(text);
  if (known) return known;
  try {
    return remember(parsedPeerIds, text, peerIdFromString(text));
  } catch (e) {
    throw new IgordError(ErrorCode.PeerAddressInvalid, `"${text}" is not a peer id: ${(e as Error).message}`);
  }
}

/** How many parsed targets and peer ids are kept (for the cache's bound test). */
export function parsedPeerCacheSizes(): { targets: number; peerIds: number } {
  return { targets: parsedTargets.size, peerIds: parsedPeerIds.size };
}

/** Multicodec of the /p2p/<peer id> multiaddr component. */
const P2P_CODE = 0x01a5;

/**
 * The node's libp2p host behind the few operations the daemon needs: serve a protocol, open a
 * stream, ping, learn about peers. Every stream is handed out as a FrameChannel, so nothing outside
 * `p2p/` touches libp2p streams.
 */
export class P2pHost {
  /** Bytes of unfinished frames its inbound channels hold from peers not trusted yet (unfinished-frames.ts). */
  readonly unfinished = new UnfinishedFrames();

  private constructor(private readonly node: IgordLibp2p) {}

  static async start(o: HostOptions): Promise<P2pHost> {
    return new P2pHost(await startHost(o));
  }

  get peerId(): string {
    return this.node.peerId.toString();
  }

  /** Listen addresses with /p2p/<peer id>, as other nodes dial them. */
  addresses(): string[] {
    return this.node.getMultiaddrs().map((a) => a.toString());
  }

  /** Serves a protocol: each inbound stream as a framed channel, with the remote peer's id; the handler trusts the channel (FrameChannel.trust) when it trusts the peer. */
  async handle(
    protocol: string,
    handler: (ch: FrameChannel, remotePeer: string) => void,
    o: { maxInboundStreams: number; writeTimeoutMs: number },
  ): Promise<void> {
    await this.node.handle(protocol, (stream, connection) => handler(new FrameChannel(stream, MAX_FRAME_BYTES, o.writeTimeoutMs, this.unfinished), connection.remotePeer.toString()), {
      maxInboundStreams: o.maxInboundStreams,
      runOnLimitedConnection: false,
    });
  }

  /**
   * Opens a protocol stream. A multiaddr is dialled as given; a bare peer id through the peer store,
   * which tries every address known for it (`knownAddrs` are added to it first).
   */
  async open(target: string, protocol: string, o: { knownAddrs: readonly string[]; signal: AbortSignal; writeTimeoutMs: number }): Promise<FrameChannel> {
    const t = parseTarget(target);
    let dest: Parameters<IgordLibp2p["dialProtocol"]>[0];
    if (t.addr) dest = t.addr;
    else {
      const known = o.knownAddrs.map((a) => parseTarget(a).addr?.decapsulateCode(P2P_CODE)).filter((a) => a !== undefined);
      if (known.length > 0) await this.node.peerStore.merge(t.peerId, { multiaddrs: known });
      dest = t.peerId;
    }
    const stream = await this.node.dialProtocol(dest, protocol, { signal: o.signal });
    return new FrameChannel(stream, MAX_FRAME_BYTES, o.writeTimeoutMs);
  }

  /** The remote address of an open connection to the peer (the address a dial actually used). */
  remoteAddress(peerId: string): string | null {
    try {
      return this.node.getConnections(parsePeerId(peerId))[0]?.remoteAddr.toString() ?? null;
    } catch {
      return null;
    }
  }

  /** Round trip of libp2p's ping protocol, in ms. */
  ping(peerId: string, timeoutMs: number): Promise<number> {
    return this.node.services.ping.ping(parsePeerId(peerId), { signal: AbortSignal.timeout(timeoutMs) });
  }

  /** A peer new to libp2p's peer store, with its addresses (each with /p2p/<id>): found by --bootstrap or --mdns, or one that connected. */
  onPeerDiscovered(cb: (peerId: string, addrs: string[]) => void): void {
    this.node.addEventListener("peer:discovery", (e) => {
      const id = e.detail.id.toString();
      cb(
        id,
        e.detail.multiaddrs.map((a) => `${a.toString()}/p2p/${id}`),
      );
    });
  }

  onPeerConnected(cb: (peerId: string) => void): void {
    this.node.addEventListener("peer:connect", (e) => cb(e.detail.toString()));
  }

  /**
   * Closes every connection, then stops libp2p. libp2p's own stop closes a connection with one
   * AbortSignal its streams all listen on, without raising the signal's listener limit: past ten
   * open streams Node warned of a leak that was none. The same bound, on a signal that allows them.
   */
  async stop(): Promise<void> {
    const signal = AbortSignal.timeout(CONNECTION_CLOSE_TIMEOUT_MS);
    setMaxListeners(Infinity, signal);
    await Promise.all(this.node.getConnections().map((c) => c.close({ signal }).catch((e: unknown) => c.abort(e as Error))));
    await this.node.stop();
  }
}
