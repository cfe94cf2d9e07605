// A bare libp2p peer that speaks the migrate protocol by hand: sends recorded, duplicated, stale or
// tampered packages to a node, as an attacker or a confused peer would.
import * as lp from "it-length-prefixed";
import { FrameChannel, CHUNK_BYTES } from "../../src/p2p/frames.js";
import { type IgordLibp2p, parseTarget, startHost } from "../../src/p2p/host.js";
import { generateKey } from "../../src/identity/keys.js";
import { MIGRATE_PROTOCOL, STATUS_PROTOCOL } from "../../src/migration/service.js";
import { PRICE_PROTOCOL } from "../../src/migration/context.js";
import { decodePackage } from "../../src/migration/package.js";

export interface RogueReply {
  stage: "offer_reply" | "result";
  ok: boolean;
  code?: string;
  /** The refusal's message (the result stage). */
  message?: string;
  already?: boolean;
}

export class RoguePeer {
  private constructor(readonly p2p: IgordLibp2p) {}

  static async start(): Promise<RoguePeer> {
    return new RoguePeer(await startHost({ key: generateKey(), listen: ["/ip4/127.0.0.1/tcp/0"], bootstrap: [], mdns: false }));
  }

  get peerId(): string {
    return this.p2p.peerId.toString();
  }

  /** Offers the package's agent and, if the target wants it, sends the package bytes as they are. */
  async send(target: string, packageBytes: Uint8Array, o: { resultTimeoutMs?: number; offer?: Record<string, unknown> } = {}): Promise<RogueReply> {
    const offer = o.offer ?? offerOf(packageBytes);
    const stream = await this.p2p.dialProtocol(parseTarget(target).addr!, MIGRATE_PROTOCOL);
    const ch = new FrameChannel(stream);
    try {
      await ch.sendJson(offer);
      const reply = await ch.receiveJson(5000, "offer_reply");
      if (reply.ok !== true || reply.already === true) {
        return { stage: "offer_reply", ok: reply.ok === true, ...(typeof reply.code === "string" ? { code: reply.code } : {}), already: reply.already === true };
      }
      await ch.sendJson({ type: "transfer", bytes: packageBytes.byteLength });
      const go = await ch.receiveJson(5000, "transfer_reply");
      if (go.ok !== true) return { stage: "result", ok: false, ...(typeof go.code === "string" ? { code: go.code } : {}) };
      for (let off = 0; off < packageBytes.byteLength; off += CHUNK_BYTES) await ch.send(packageBytes.subarray(off, off + CHUNK_BYTES));
      const result = await ch.receiveJson(o.resultTimeoutMs ?? 5000, "result");
      return { stage: "result", ok: result.ok === true, ...(typeof result.code === "string" ? { code: result.code } : {}), ...(typeof result.message === "string" ? { message: result.message } : {}) };
    } finally {
      await ch.close();
    }
  }

  /**
   * Offers the package's agent with the durable signal (as a source that sends `durable` once its
   * handoff is durable), sends the package, then does `after` on the stream (send `durable`, twice,
   * something else, or nothing) and reads the target's `result` within `resultTimeoutMs`. `early`
   * sends `durable` before the package instead. `null` when the stream ended with no result.
   */
  async sendSignalled(
    target: string,
    packageBytes: Uint8Array,
    after: "durable" | "twice" | "other" | "none" | "early",
    o: { resultTimeoutMs?: number; onAdmitting?: () => Promise<void> } = {},
  ): Promise<(RogueReply & { offerSignal: boolean }) | null> {
    const offer = offerOf(packageBytes);
    const stream = await this.p2p.dialProtocol(parseTarget(target).addr!, MIGRATE_PROTOCOL);
    const ch = new FrameChannel(stream);
    try {
      await ch.sendJson({ ...offer, durableSignal: true });
      const reply = await ch.receiveJson(5000, "offer_reply");
      const offerSignal = reply.durableSignal === true;
      if (reply.ok !== true) return { stage: "offer_reply", ok: false, offerSignal, ...(typeof reply.code === "string" ? { code: reply.code } : {}) };
      await ch.sendJson({ type: "transfer", bytes: packageBytes.byteLength });
      const go = await ch.receiveJson(5000, "transfer_reply");
      if (go.ok !== true) return { stage: "result", ok: false, offerSignal, ...(typeof go.code === "string" ? { code: go.code } : {}) };
      if (after === "early") await ch.sendJson({ type: "durable" });
      for (let off = 0; off < packageBytes.byteLength; off += CHUNK_BYTES) await ch.send(packageBytes.subarray(off, off + CHUNK_BYTES));
      await o.onAdmitting?.();
      if (after === "durable" || after === "twice") await ch.sendJson({ type: "durable" });
      if (after === "twice") await ch.sendJson({ type: "durable" });
      if (after === "other") await ch.sendJson({ type: "offer", agentId: offer.agentId });
      let result: Record<string, unknown>;
      try {
        result = await ch.receiveJson(o.resultTimeoutMs ?? 5000, "result");
      } catch {
        return null;
      }
      return { stage: "result", ok: result.ok === true, offerSignal, ...(typeof result.code === "string" ? { code: result.code } : {}) };
    } finally {
      await ch.close();
    }
  }

  /** Opens a migrate stream, sends raw frames (length-prefixed) and reads the first answer. */
  async raw(target: string, frames: Uint8Array[]): Promise<RogueReply> {
    const stream = await this.p2p.dialProtocol(parseTarget(target).addr!, MIGRATE_PROTOCOL);
    // A larger write limit than any node reads, to send frames a node must refuse.
    const ch = new FrameChannel(stream, 64 * 1024 * 1024);
    try {
      // Written without waiting for the peer to read: a node that refuses a frame stops reading.
      for (const f of frames) stream.send(lp.encode.single(f));
      const reply = await ch.receiveJson(5000, "offer_reply");
      return { stage: "offer_reply", ok: reply.ok === true, ...(typeof reply.code === "string" ? { code: reply.code } : {}) };
    } finally {
      ch.abort(new Error("done")); // what the node refused to read is dropped, not flushed
    }
  }

  /**
   * Sends an offer with these fields, announces a package of `bytes` if the node takes the offer,
   * sends `send` bytes of it and then goes silent, holding the stream open (a peer that reserves
   * the node's admission capacity and stalls). Resolves with the node's answer to the offer or
   * the transfer.
   */
  async stall(target: string, offer: Record<string, unknown>, bytes: number, send = 0): Promise<RogueReply> {
    const stream = await this.p2p.dialProtocol(parseTarget(target).addr!, MIGRATE_PROTOCOL);
    this.held.push(stream);
    const ch = new FrameChannel(stream);
    await ch.sendJson({ type: "offer", ...offer });
    const reply = await ch.receiveJson(5000, "offer_reply");
    if (reply.ok !== true) return { stage: "offer_reply", ok: false, ...(typeof reply.code === "string" ? { code: reply.code } : {}) };
    await ch.sendJson({ type: "transfer", bytes });
    const go = await ch.receiveJson(5000, "transfer_reply");
    if (go.ok !== true) return { stage: "result", ok: false, ...(typeof go.code === "string" ? { code: go.code } : {}) };
    for (let off = 0; off < send; off += CHUNK_BYTES) await ch.send(new Uint8Array(Math.min(CHUNK_BYTES, send - off)));
    return { stage: "result", ok: true };
  }

  /** Sends one migration-status query as given and returns the reply. */
  async status(target: string, query: Record<string, unknown>): Promise<Record<string, unknown>> {
    const stream = await this.p2p.dialProtocol(parseTarget(target).addr!, STATUS_PROTOCOL);
    const ch = new FrameChannel(stream);
    try {
      await ch.sendJson({ type: "status", ...query });
      return await ch.receiveJson(5000, "status_reply");
    } finally {
      await ch.close();
    }
  }

  /**
   * A target that takes the whole package and then drops the stream without a result (the
   * confirmation is lost), and that does not answer status queries until told to.
   */
  async swallow(): Promise<string> {
    // Before the transfer it looks like any healthy node that would take the agent.
    await this.answerPrice();
    await this.p2p.handle(MIGRATE_PROTOCOL, async (stream) => {
      const ch = new FrameChannel(stream);
      await ch.receiveJson(5000, "offer");
      await ch.sendJson({ type: "offer_reply", ok: true, haveWasm: false, baseHash: null });
      const t = await ch.receiveJson(5000, "transfer");
      await ch.sendJson({ type: "transfer_reply", ok: true });
      ch.acceptChunks();
      for (let got = 0; got < Number(t.bytes); ) got += (await ch.receive(5000, "chunk")).byteLength;
      ch.abort(new Error("gone before confirming"));
    });
    return this.p2p.getMultiaddrs()[0]!.toString();
  }

  /**
   * A target that reads the whole announced package before it answers `transfer` (as a source that
   * waited for that answer would never let it), then answers `transfer_reply` as told and, if that
   * was a yes, confirms at the next major (it keeps nothing: the agent runs nowhere after it).
   * `got` resolves with the package bytes that had arrived when the answer went out.
   */
  async answerTransferAfterPackage(answer: { ok: true } | { ok: false; code: string }): Promise<{ addr: string; got: Promise<Uint8Array> }> {
    await this.answerPrice();
    let got!: { resolve: (b: Uint8Array) => void; reject: (e: unknown) => void };
    const arrived = new Promise<Uint8Array>((resolve, reject) => (got = { resolve, reject }));
    await this.p2p.handle(MIGRATE_PROTOCOL, async (stream) => {
      const ch = new FrameChannel(stream);
      try {
        const offer = await ch.receiveJson(5000, "offer");
        await ch.sendJson({ type: "offer_reply", ok: true, haveWasm: false, baseHash: null });
        const t = await ch.receiveJson(5000, "transfer");
        ch.acceptChunks();
        const chunks: Uint8Array[] = [];
        for (let n = 0; n < Number(t.bytes); ) {
          const c = await ch.receive(5000, "chunk");
          chunks.push(c);
          n += c.byteLength;
        }
        got.resolve(Buffer.concat(chunks));
        if (!answer.ok) {
          await ch.sendJson({ type: "transfer_reply", ok: false, code: answer.code, message: "refused by the test" });
          return;
        }
        await ch.sendJson({ type: "transfer_reply", ok: true });
        await ch.sendJson({ type: "result", ok: true, epochMajor: String(BigInt(offer.epochMajor as string) + 1n), epochGeneration: "0", node: this.peerId });
      } catch (e) {
        got.reject(e);
      } finally {
        await ch.close();
      }
    });
    return { addr: this.p2p.getMultiaddrs()[0]!.toString(), got: arrived };
  }

  /** From now on answers every status query with this state (as a target that never stored it would). */
  async answerStatus(state: "not_owned" | "receiving"): Promise<void> {
    await this.p2p.handle(STATUS_PROTOCOL, async (stream) => {
      const ch = new FrameChannel(stream);
      const q = await ch.receiveJson(5000, "status");
      await ch.sendJson({ type: "status_reply", agentId: q.agentId, state });
      await ch.close();
    });
  }

  /** Answers price queries as a node that offers everything (or `capabilities`) and takes agents from anyone. */
  async answerPrice(capabilities = ["clock", "emit", "log", "pricing", "rand", "wallet"]): Promise<void> {
    await this.p2p.unhandle(PRICE_PROTOCOL); // an earlier answer, if any, is replaced
    await this.p2p.handle(PRICE_PROTOCOL, async (stream) => {
      const ch = new FrameChannel(stream);
      await ch.receiveJson(5000, "price");
      await ch.sendJson({ type: "price_reply", price_per_second: "1", node_id: this.peerId, capabilities, accepts_migrations: true, agents: 0, max_agents: 0 });
      await ch.close();
    });
  }

  /** Accepts price and migrate streams and never answers (a hung or overloaded target). */
  async blackhole(): Promise<string> {
    for (const protocol of [PRICE_PROTOCOL, MIGRATE_PROTOCOL]) {
      await this.p2p.handle(protocol, (stream) => {
        this.held.push(stream);
      });
    }
    return `${this.p2p.getMultiaddrs()[0]!.toString()}`;
  }

  private readonly held: unknown[] = [];

  async stop(): Promise<void> {
    await this.p2p.stop();
  }
}

/**
 * The offer for a package: its fields, read here so the decoded package (a copy of every section)
 * is not kept alive by send() while it runs (a test measures what the target holds meanwhile).
 */
/** A frame's message type (`{"type":...}`), or "package" for anything else. */
export function frameType(f: Uint8Array): string {
  const m = /^\{"type":"([a-z_]+)"/.exec(Buffer.from(f.subarray(0, 24)).toString());
  return m ? m[1]! : "package";
}

export function offerOf(packageBytes: Uint8Array): Record<string, unknown> {
  const pkg = decodePackage(packageBytes);
  return {
    type: "offer",
    agentId: pkg.agentId,
    did: pkg.did,
    wasmHash: pkg.wasmHash,
    checkpointHash: pkg.checkpointHash,
    epochMajor: pkg.epoch.major,
    epochGeneration: pkg.epoch.generation,
    manifest: pkg.manifest,
  };
}
