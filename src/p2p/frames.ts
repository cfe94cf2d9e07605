// Length-prefixed frames on a libp2p stream (it-length-prefixed): JSON control messages and raw
// package chunks. Every frame's size is checked against the channel's limit before it is buffered,
// every read has a deadline, and a stream that ends early is a typed error, never a hang.
import type { Stream } from "@libp2p/interface";
import * as lp from "it-length-prefixed";
import { Uint8ArrayList } from "uint8arraylist";
import { type Epoch, MAX_EPOCH_PART } from "../authority/lease.js";
import { ErrorCode, IgordError } from "../errors.js";
import type { UnfinishedFrames } from "./unfinished-frames.js";

/** How long closing a stream may wait for buffered data to leave before the stream is reset. */
export const CLOSE_TIMEOUT_MS = 5_000;
/** Default for how long a write may wait for the peer to read (see FrameChannel). */
export const DEFAULT_WRITE_TIMEOUT_MS = 30_000;
/** Longest agent id and DID accepted in a message (agent ids are at most 64 characters). */
export const MAX_AGENT_ID_CHARS = 128;
export const MAX_DID_CHARS = 256;
/**
 * Largest epoch part a frame may carry (the lease module's): a value at or above 2^63 can never be
 * held and is an invalid frame, not a node's trouble.
 */
export { MAX_EPOCH_PART } from "../authority/lease.js";
/** Package bytes per frame: well under libp2p's 4 MiB message limit. */
export const CHUNK_BYTES = 1024 * 1024;
/** Largest JSON control frame (the offer carries the manifest). */
export const MAX_CONTROL_FRAME_BYTES = 256 * 1024;
/** Largest frame a channel sends or, once it takes package chunks (acceptChunks), accepts: a chunk plus room for nothing else. */
export const MAX_FRAME_BYTES = CHUNK_BYTES;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** JSON with bigints written as decimal strings (epochs, budgets, ticks). */
export function jsonBytes(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v)));
}

/** Bytes of the varint length prefix it-length-prefixed writes before a frame of `n` bytes. */
function prefixBytes(n: number): number {
  let bytes = 1;
  for (let rest = n; rest >= 0x80; rest = Math.floor(rest / 0x80)) bytes++;
  return bytes;
}

export class FrameChannel {
  private readonly frames: AsyncIterator<Uint8ArrayList>;
  /** Bytes the stream has taken so far (frames included): a write it refused outright does not count. */
  bytesSent = 0;
  /** What the stream's write buffer still held when it was aborted (then discarded: those bytes never left). */
  private unsentAtAbort: number | null = null;
  /** The largest frame read: a control message's until the channel takes package chunks (acceptChunks). */
  private receiveLimit: number;
  /** Bytes received and not yet delivered as frames, counted against `unfinished` until the peer is trusted. */
  private held = 0;
  private trusted: boolean;

  constructor(
    readonly stream: Stream,
    private readonly maxFrameBytes = MAX_FRAME_BYTES,
    /** A peer that stops reading for this long fails the write instead of stalling it forever. */
    private readonly writeTimeoutMs = DEFAULT_WRITE_TIMEOUT_MS,
    /** An inbound channel's node-wide count of unfinished frames from peers not trusted yet (trust() leaves it). */
    private readonly unfinished: UnfinishedFrames | null = null,
  ) {
    this.receiveLimit = Math.min(maxFrameBytes, MAX_CONTROL_FRAME_BYTES);
    this.trusted = unfinished === null;
    const frames = lp.decode(unfinished ? this.counted(stream, unfinished) : stream, {
      maxDataLength: maxFrameBytes,
      // Refused as its length arrives, before any of it is buffered.
      onLength: (n) => {
        if (n > this.receiveLimit) throw new IgordError(ErrorCode.MigrationFrameTooLarge, `a frame of ${n} bytes is over this channel's ${this.receiveLimit}-byte limit`);
      },
      onData: (d) => this.release(d.byteLength + prefixBytes(d.byteLength)),
    });
    this.frames = frames[Symbol.asyncIterator]();
  }

  /**
   * Bytes that left this node of those the stream took: all but what its write buffer still holds
   * (a peer that reads slowly, or not at all, keeps them there; yamux sends no more than the peer's
   * window). Once the stream is aborted, what it held then never leaves, so the count is final. A
   * frame whose last byte is within it may have arrived; one past it cannot have.
   */
  get bytesGone(): number {
    // A stream reset by the peer discarded its buffer (0 left): counted as gone, the safe side.
    const unsent = this.unsentAtAbort ?? this.stream.writeBufferLength;
    return this.bytesSent - unsent;
  }

  /** Aborts the stream, first noting what its write buffer held (bytesGone). */
  private abortStream(err: Error): void {
    this.unsentAtAbort ??= this.stream.writeBufferLength;
    this.stream.abort(err);
  }

  /** The package's chunks come on this channel (the node took the offer): frames up to MAX_FRAME_BYTES. */
  acceptChunks(): void {
    this.receiveLimit = this.maxFrameBytes;
  }

  /** The peer is trusted: what it sends no longer counts against the node-wide bound of unfinished frames. */
  trust(): void {
    this.release(this.held);
    this.trusted = true;
  }

  /** The stream's bytes as they arrive, counted against `unfinished` while the peer is not trusted. */
  private async *counted(source: AsyncIterable<Uint8Array | Uint8ArrayList>, unfinished: UnfinishedFrames): AsyncGenerator<Uint8Array | Uint8ArrayList> {
    try {
      for await (const chunk of source) {
        if (!this.trusted) {
          const n = chunk.byteLength;
          if (unfinished.held + n > unfinished.limit) {
            const err = new IgordError(ErrorCode.MigrationBusy, `this node holds ${unfinished.held} bytes of unfinished frames from peers it does not trust, its limit of ${unfinished.limit}; try again later`);
            this.abortStream(err);
            throw err;
          }
          unfinished.held += n;
          this.held += n;
        }
        yield chunk;
      }
    } finally {
      this.release(this.held);
    }
  }

  private release(n: number): void {
    const r = Math.min(n, this.held);
    if (r <= 0 || !this.unfinished) return;
    this.held -= r;
    this.unfinished.held -= r;
  }

  send(bytes: Uint8Array): Promise<void> {
    return this.sendAll([bytes]);
  }

  /**
   * Frames that go out back to back, in one write to the stream (one yamux frame and Noise message
   * while they fit, instead of one each): the reader sees the same frames.
   */
  async sendAll(frames: readonly Uint8Array[]): Promise<void> {
    const data = new Uint8ArrayList();
    for (const bytes of frames) {
      if (bytes.length > this.maxFrameBytes) {
        throw new IgordError(ErrorCode.MigrationFrameTooLarge, `frame of ${bytes.length} bytes is over the ${this.maxFrameBytes}-byte limit`);
      }
      data.append(lp.encode.single(bytes));
    }
    const accepted = this.stream.send(data);
    this.bytesSent += data.byteLength;
    if (!accepted) {
      try {
        await this.stream.onDrain({ signal: AbortSignal.timeout(this.writeTimeoutMs) });
      } catch (e) {
        const err = new IgordError(ErrorCode.MigrationTimeout, `the peer read nothing for ${this.writeTimeoutMs}ms`, { cause: e });
        this.abortStream(err);
        throw err;
      }
    }
  }

  sendJson(value: unknown): Promise<void> {
    return this.send(jsonBytes(value));
  }

  /**
   * The next frame, within `timeoutMs`. Between reads the stream is paused, so what a peer sends
   * ahead is held in libp2p's bounded read buffer (4 MiB, then the stream is aborted), never in an
   * unbounded queue.
   */
  async receive(timeoutMs: number, what: string): Promise<Uint8Array> {
    this.flow("resume");
    try {
      return await this.next(timeoutMs, what);
    } finally {
      this.flow("pause");
    }
  }

  private flow(op: "pause" | "resume"): void {
    const st = this.stream.status;
    if (st !== "open") return;
    try {
      if (op === "pause") this.stream.pause();
      else this.stream.resume();
    } catch {
      // The read side is closing: nothing more will be buffered anyway.
    }
  }

  private async next(timeoutMs: number, what: string): Promise<Uint8Array> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const err = new IgordError(ErrorCode.MigrationTimeout, `no ${what} within ${timeoutMs}ms`);
        this.abortStream(err);
        reject(err);
      }, timeoutMs);
    });
    try {
      const next = await Promise.race([this.frames.next(), deadline]);
      if (next.done) throw new IgordError(ErrorCode.MigrationStreamClosed, `the stream ended before the ${what}`);
      return next.value.subarray();
    } catch (e) {
      if (e instanceof IgordError) throw e;
      const err = e as Error & { code?: string; name?: string };
      if (err.name === "InvalidDataLengthError" || err.code === "ERR_MSG_DATA_TOO_LONG") {
        throw new IgordError(ErrorCode.MigrationFrameTooLarge, `${what}: frame over the ${this.receiveLimit}-byte limit`);
      }
      throw new IgordError(ErrorCode.MigrationStreamClosed, `the stream failed before the ${what}: ${err.message}`, { cause: e });
    } finally {
      clearTimeout(timer);
    }
  }

  /** The next frame as a JSON object of the expected `type`. */
  async receiveJson(timeoutMs: number, type: string): Promise<Record<string, unknown>> {
    const bytes = await this.receive(timeoutMs, `"${type}" message`);
    if (bytes.length > MAX_CONTROL_FRAME_BYTES) {
      throw new IgordError(ErrorCode.MigrationFrameTooLarge, `"${type}" message of ${bytes.length} bytes is over ${MAX_CONTROL_FRAME_BYTES}`);
    }
    let value: unknown;
    try {
      value = JSON.parse(decoder.decode(bytes));
    } catch (e) {
      throw new IgordError(ErrorCode.MigrationFrameInvalid, `"${type}" message is not UTF-8 JSON: ${(e as Error).message}`);
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw new IgordError(ErrorCode.MigrationFrameInvalid, `"${type}" message must be a JSON object`);
    }
    const obj = value as Record<string, unknown>;
    if (obj.type !== type) throw new IgordError(ErrorCode.MigrationFrameInvalid, `expected a "${type}" message, got ${JSON.stringify(obj.type)}`);
    return obj;
  }

  /** Closes gracefully, or resets the stream if the peer does not let it finish in time. */
  async close(): Promise<void> {
    this.release(this.held);
    try {
      await this.stream.close({ signal: AbortSignal.timeout(CLOSE_TIMEOUT_MS) });
    } catch (e) {
      // Already reset by the other side, or a peer that will not read what is left: drop it.
      if (this.stream.status === "open" || this.stream.status === "closing") this.abortStream(e as Error);
    }
  }

  abort(err: Error): void {
    this.release(this.held);
    this.abortStream(err);
  }

  /** Open both ways at both ends, so another exchange can run on it. */
  reusable(): boolean {
    const s = this.stream;
    return s.status === "open" && s.writeStatus === "writable" && s.remoteWriteStatus === "writable" && s.readStatus !== "closing" && s.readStatus !== "closed";
  }
}

// ---- field readers for received JSON (each names the field that is wrong) -----------------------

function bad(type: string, field: string, want: string): never {
  throw new IgordError(ErrorCode.MigrationFrameInvalid, `"${type}" message: field "${field}" must be ${want}`, { details: { field } });
}

export function str(o: Record<string, unknown>, type: string, field: string, maxLen = 4096): string {
  const v = o[field];
  if (typeof v !== "string" || v.length === 0 || v.length > maxLen) bad(type, field, `a non-empty string of at most ${maxLen} characters`);
  return v;
}

export function optStr(o: Record<string, unknown>, type: string, field: string, maxLen = 4096): string | null {
  return o[field] === undefined || o[field] === null ? null : str(o, type, field, maxLen);
}

export function uint(o: Record<string, unknown>, type: string, field: string): bigint {
  const v = o[field];
  if (typeof v !== "string" || !/^\d{1,20}$/.test(v)) bad(type, field, "a decimal integer string");
  const n = BigInt(v);
  if (n >= 2n ** 64n) bad(type, field, "below 2^64");
  return n;
}

/** An epoch in `epochMajor`/`epochGeneration`, each part below 2^63. */
export function epoch(o: Record<string, unknown>, type: string): Epoch {
  const part = (field: string): bigint => {
    const n = uint(o, type, field);
    if (n > MAX_EPOCH_PART) bad(type, field, "below 2^63");
    return n;
  };
  return { major: part("epochMajor"), generation: part("epochGeneration") };
}

export function safeInt(o: Record<string, unknown>, type: string, field: string): number {
  const v = o[field];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) bad(type, field, "a non-negative integer");
  return v;
}

export function bool(o: Record<string, unknown>, type: string, field: string): boolean {
  const v = o[field];
  if (typeof v !== "boolean") bad(type, field, "true or false");
  return v;
}

export function hex32(o: Record<string, unknown>, type: string, field: string): string {
  const v = o[field];
  if (typeof v !== "string" || !/^[0-9a-f]{64}$/.test(v)) bad(type, field, "64 lowercase hex digits");
  return v;
}

export function strings(o: Record<string, unknown>, type: string, field: string): string[] {
  const v = o[field];
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) bad(type, field, "an array of strings");
  return v as string[];
}
