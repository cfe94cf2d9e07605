// A package sent with its offer: a source that knows what its target holds of the agent (the target
// handed it the agent at a checkpoint it keeps as its retired copy's head) builds the package for that
// before the target's answer and sends it behind the offer, in the same write. The target's reception
// (and its pending row's fsync) then starts one round trip sooner, during the source's own fsync
// rather than after it. The target takes it only when the guess is right (the base it names is the
// one it would have named, and a package without the module goes only to a node that holds it); else
// it drops it and the hop goes on as without it. Only a small package goes so (EAGER_PACKAGE_BYTES),
// to a target that said, when it last sent this agent here, that it takes one (`takesPackageWithOffer`).
import { ErrorCode, IgordError } from "../errors.js";
import { type FrameChannel, hex32 } from "../p2p/frames.js";
import { EAGER_PACKAGE_BYTES } from "./early-offer.js";

/** What a package is built for: what its target holds of the agent. */
export interface PackageBasis {
  /** The base it continues from (null: from genesis or a signed base). */
  baseHash: string | null;
  /** Built without the module, for a node that holds it. */
  haveWasm: boolean;
}

/** What an offer says of the package right behind it: its size and what it was built for. */
export interface PackageWithOffer extends PackageBasis {
  bytes: number;
}

/** What a target's offer_reply asks the package to be built for (its baseHash checked). */
export function basisOf(reply: Record<string, unknown>): PackageBasis {
  return { baseHash: typeof reply.baseHash === "string" ? hex32(reply, "offer_reply", "baseHash") : null, haveWasm: reply.haveWasm === true };
}

export function sameBasis(a: PackageBasis, b: PackageBasis): boolean {
  return a.baseHash === b.baseHash && a.haveWasm === b.haveWasm;
}

/** What this node remembers of an agent that arrived, to send it back with its offer. */
export interface Arrival {
  peer: string;
  /** The checkpoint it arrived at: the head of the sender's retired copy. */
  checkpointHash: string;
  /** The module it ran then. */
  wasmHash: string;
}

/** Arrivals remembered at most (the oldest forgotten first): one per agent received. */
export const MAX_ARRIVALS = 10_000;

/** Remembers that `agentId` arrived from a peer that takes a package with the offer. */
export function rememberArrival(arrivals: Map<string, Arrival>, agentId: string, a: Arrival): void {
  arrivals.delete(agentId);
  arrivals.set(agentId, a);
  if (arrivals.size > MAX_ARRIVALS) arrivals.delete(arrivals.keys().next().value as string);
}

/** The offer's `packageWithOffer`, checked; null when it has none. */
export function packageWithOfferOf(offer: Record<string, unknown>): PackageWithOffer | null {
  const p = offer.packageWithOffer;
  if (p === undefined) return null;
  const invalid = (why: string): never => {
    throw new IgordError(ErrorCode.MigrationFrameInvalid, `"offer" message: packageWithOffer ${why}`);
  };
  if (typeof p !== "object" || p === null || Array.isArray(p)) return invalid("must be an object");
  const o = p as Record<string, unknown>;
  if (typeof o.bytes !== "number" || !Number.isInteger(o.bytes) || o.bytes < 1 || o.bytes > EAGER_PACKAGE_BYTES) return invalid(`bytes must be an integer from 1 to ${EAGER_PACKAGE_BYTES}`);
  if (typeof o.haveWasm !== "boolean") return invalid("haveWasm must be true or false");
  const baseHash = o.baseHash === null ? null : hex32(o, "offer", "baseHash");
  return { bytes: o.bytes, baseHash, haveWasm: o.haveWasm };
}

/**
 * What `peer` holds of the agent, when this node knows it: the agent arrived from `peer` at a
 * checkpoint this history still holds (`holds`), and `peer` takes a package with the offer. The
 * arrival is used once (a hop that fails leaves no guess behind).
 */
export function guessOf(arrivals: Map<string, Arrival>, agentId: string, wasmHash: string, peer: string, holds: (checkpointHash: string) => boolean): { baseHash: string; haveWasm: boolean } | null {
  const arrival = arrivals.get(agentId);
  arrivals.delete(agentId);
  if (!arrival || arrival.peer !== peer || !holds(arrival.checkpointHash)) return null;
  return { baseHash: arrival.checkpointHash, haveWasm: arrival.wasmHash === wasmHash };
}

/** Reads the announcement and the package an offer said it sends behind it: `transfer`, then the package in one frame. */
export async function receivePackageWithOffer(ch: FrameChannel, p: PackageWithOffer, timeoutMs: number): Promise<Uint8Array> {
  const deadline = performance.now() + timeoutMs;
  const transfer = await ch.receiveJson(timeoutMs, "transfer");
  if (transfer.type !== "transfer" || transfer.bytes !== p.bytes) {
    throw new IgordError(ErrorCode.MigrationFrameInvalid, `the package sent with the offer must be announced as ${p.bytes} bytes`);
  }
  const pkg = await ch.receive(Math.max(1, deadline - performance.now()), "package");
  if (pkg.length !== p.bytes) throw new IgordError(ErrorCode.MigrationFrameInvalid, `the package sent with the offer is ${pkg.length} bytes in its frame, not the announced ${p.bytes}`);
  return pkg;
}
