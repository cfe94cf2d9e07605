// The offer a source sends on the stream it kept open to its first target as soon as the detach
// checkpoint and its HANDOFF_INITIATED commit, while their WAL sync runs off the main thread: the
// target's reply, the package built for it, a small package written at once to a target that takes
// the durable signal, and `durable` the moment both the package went and the sync returned. The
// first attempt to that target (source.ts) takes it up; a hop that fails first withholds `durable`.
import type { Epoch } from "../authority/lease.js";
import { ErrorCode, IgordError } from "../errors.js";
import { type FrameChannel, jsonBytes } from "../p2p/frames.js";
import type { PackageWithOffer } from "./package-with-offer.js";

/**
 * A package this small is sent right behind `transfer`, without waiting for `transfer_reply`: it is
 * the smallest --max-package-size a node accepts, far under libp2p's 4 MiB read buffer and yamux's
 * 256 KiB initial stream window, so the write never waits on a target that has not read it yet.
 */
export const EAGER_PACKAGE_BYTES = 64 * 1024;

/** Message 4, the target's yes to `transfer`. */
export const TRANSFER_OK = jsonBytes({ type: "transfer_reply", ok: true });

/** Message 5b, the source's handoff durable (PROTOCOL.md). */
export const DURABLE_FRAME = jsonBytes({ type: "durable" });

/**
 * An offer sent on the stream kept for the first target as soon as the detach checkpoint and its
 * HANDOFF_INITIATED commit, while their fsync runs off the main thread (sendEarlyOffer). The first
 * attempt to that target takes it up instead of sending its own.
 */
export interface EarlyOffer {
  peerId: string;
  ch: FrameChannel;
  sent: Promise<void>;
  /** The target's offer_reply, read as soon as it comes (during the fsync, often). */
  reply: Promise<Record<string, unknown>>;
  /** The package for that reply, built when it said yes; null otherwise. */
  built: Promise<Uint8Array | null>;
  /**
   * True once the package went out with its announcement during the fsync and the target accepted
   * the announcement: a target that takes the durable signal (it stores nothing before `durable`,
   * sent only after the fsync), and a package of at most EAGER_PACKAGE_BYTES. False: nothing went.
   */
  shipped: Promise<boolean>;
  /** True once the package went out with its announcement during the fsync (its transfer_reply not read yet). */
  wrote: Promise<boolean>;
  /**
   * `durable`, sent once the package was written and the detach commit's fsync has returned, right
   * then (in the package's own write when the fsync had returned by then): not behind
   * `transfer_reply`, nor the rest of the detach (its promise chain, the unload, the journal).
   * Resolves true once it was written, false when it was not sent (no package, or withheld).
   */
  durableSent: Promise<boolean>;
  /** Where `durable` ends in the stream's bytes, once the stream took it (ch.bytesGone past it: it left, and the target may store the agent). */
  durableEnd: number | null;
  /** Set when the hop fails before `durable` was sent: it is then never sent. */
  withheld: boolean;
  /** Set when the write of `durable` starts (withheld is false then): it may arrive. */
  durableStarted: boolean;
  /** Whether the crash point after the durable handoff (hooks.afterHandoffRecorded) has run on this chain. */
  hookRan: boolean;
  checkpointHash: string;
  epoch: Epoch;
  taken: boolean;
}

export interface EarlyOfferStart {
  ch: FrameChannel;
  peerId: string;
  offer: Record<string, unknown>;
  /** A package built for what the target is known to hold, sent behind the offer (package-with-offer.ts). */
  withOffer: { bytes: Uint8Array; announce: PackageWithOffer } | null;
  checkpointHash: string;
  epoch: Epoch;
  timeoutMs: number;
  /** The detach commit's WAL sync (rejects when it fails: then no `durable` ever goes). */
  synced: Promise<void>;
  /** Builds the package for the target's reply; `eager` says whether a package goes at once. */
  build(reply: Record<string, unknown>, eager: (bytes: Uint8Array) => boolean): Uint8Array;
  /** Reads the target's transfer_reply; throws its refusal. */
  transferAccepted(timeoutMs: number): Promise<void>;
  /** The crash point after the durable handoff, before anything that moves ownership is sent. */
  handoffDurable(): void;
}

/** Sends the offer and starts its chain (every step settles on its own; the attempt that takes it up awaits them). */
export function startEarlyOffer(o: EarlyOfferStart): EarlyOffer {
  const { ch } = o;
  const w = o.withOffer;
  // With a package built for what the target holds: the offer, its announcement and the package in one write.
  const sent = w ? ch.sendAll([jsonBytes({ ...o.offer, packageWithOffer: w.announce }), jsonBytes({ type: "transfer", bytes: w.bytes.length }), w.bytes]) : ch.sendJson(o.offer);
  // The reply is read, and the package built for it, as soon as the reply comes, while the
  // fsync may still run (its run seal is an unsynced write after the handoff's commit, lost with
  // it or kept with it). To a target that takes the durable signal, a small package goes at once
  // too: that target admits it meanwhile but stores nothing before `durable`, which goes only once
  // the fsync has returned. Any other target gets it from the attempt, after it.
  const reply = sent.then(() => ch.receiveJson(o.timeoutMs, "offer_reply"));
  const eager = (r: Record<string, unknown>, b: Uint8Array): boolean => r.durableSignal === true && b.length <= EAGER_PACKAGE_BYTES;
  // The package sent with the offer, when the target took it; else the one built for its reply.
  const tookSent = (r: Record<string, unknown>): boolean => w !== null && r.packageAccepted === true && r.durableSignal === true;
  const built = reply.then((r) => (r.ok === true && r.already !== true ? (w && tookSent(r) ? w.bytes : o.build(r, (b) => eager(r, b))) : null));
  // Whether the detach's sync has returned (a failed one never counts).
  let durableHere = false;
  o.synced.then(
    () => (durableHere = true),
    () => undefined,
  );
  const early: EarlyOffer = { peerId: o.peerId, ch, sent, reply, built, shipped: Promise.resolve(false), wrote: Promise.resolve(false), durableSent: Promise.resolve(false), durableEnd: null, withheld: false, durableStarted: false, hookRan: false, checkpointHash: o.checkpointHash, epoch: o.epoch, taken: false };
  /** The crash point, once per hop (the source's handOff runs it when it gets there first). */
  const handoffDurable = (): void => {
    if (early.hookRan) return;
    early.hookRan = true;
    o.handoffDurable();
  };
  // The package's write: its announcement, the package, and `durable` behind them when the sync
  // has returned by then (one write, and nothing waits for transfer_reply).
  const wrote = Promise.all([reply, built]).then(async ([r, b]) => {
    // Already on the wire, announced: it went with the offer.
    if (b && tookSent(r)) return true;
    if (!b || !eager(r, b)) return false;
    const frames = [jsonBytes({ type: "transfer", bytes: b.length }), b];
    if (durableHere && !early.withheld) {
      handoffDurable();
      early.durableStarted = true;
      frames.push(DURABLE_FRAME);
    }
    const before = ch.bytesSent;
    try {
      await ch.sendAll(frames);
    } finally {
      if (early.durableStarted && ch.bytesSent > before) early.durableEnd = ch.bytesSent;
    }
    return true;
  });
  early.wrote = wrote;
  early.shipped = wrote.then(async (went) => {
    if (!went) return false;
    await o.transferAccepted(o.timeoutMs);
    return true;
  });
  // Else `durable` as soon as the sync returns, behind the package, not waiting for transfer_reply
  // (a target that refuses the announcement reads nothing after it) nor for the detach's remaining
  // work. A sync that fails rejects here, and nothing goes.
  early.durableSent = Promise.all([wrote, o.synced]).then(async ([went]) => {
    if (!went) return false;
    if (early.durableStarted) return true;
    if (early.withheld) return false;
    handoffDurable();
    early.durableStarted = true;
    const before = ch.bytesSent;
    try {
      await ch.send(DURABLE_FRAME);
    } finally {
      if (ch.bytesSent > before) early.durableEnd = ch.bytesSent;
    }
    return true;
  });
  // Awaited by the attempt that takes it up; a failure there is that attempt's.
  sent.catch(() => undefined);
  reply.catch(() => undefined);
  built.catch(() => undefined);
  wrote.catch(() => undefined);
  early.shipped.catch(() => undefined);
  early.durableSent.catch(() => undefined);
  return early;
}

/**
 * The hop failed before its attempt: `durable` is withheld if it has not gone yet. True when it
 * left this node, so the target may have stored the agent.
 */
export async function withholdDurable(early: EarlyOffer): Promise<boolean> {
  early.withheld = true;
  // Not started: the early chain sees `withheld` before it would write, and never sends it.
  if (!early.durableStarted) return false;
  await early.durableSent.catch(() => false);
  return leftOrWithheld(early.ch, early.durableEnd);
}

/**
 * Whether the frame ending at `end` of the channel's bytes left this node (its target may have it
 * whole). One still in the stream's write buffer (a target reading slowly, or not at all) never
 * leaves: the stream is reset first, so the buffer is dropped. A stalled stream's last frame was
 * taken for sent as soon as the stream queued it, so the hop was ambiguous (RECOVERY_REQUIRED, no
 * fallback) though the target could not have it.
 */
export function leftOrWithheld(ch: FrameChannel, end: number | null): boolean {
  if (end === null) return false;
  if (ch.bytesGone >= end) return true;
  ch.abort(new IgordError(ErrorCode.MigrationStreamClosed, "the hop failed before its last frame left this node: withheld"));
  return ch.bytesGone >= end;
}
