// A deterministic `wasi_snapshot_preview1`: a second door to the observations the `igor` hostcalls
// record, so toolchains that speak WASI (wasi-libc, TinyGo, Rust/Zig wasm32-wasi) run unmodified and
// replay exactly. One WasiHost per instance; the sandbox tells it which phase the guest is in.
//
// During a tick (agent_tick):
// - clock_time_get (realtime, monotonic) is igor.clock_now: one recorded entry (id 1), capability
//   "clock"; monotonic never goes below what this instance served before (a live floor: replay
//   serves the recorded value).
// - random_get is igor.rand_bytes (id 2), capability "rand".
// - fd_write to 1 and 2 is the agent's log, capability "log": bytes are line-buffered per fd and
//   every complete line is one log_emit entry (id 3) without its "\n", compared byte for byte in
//   replay. A partial line left at the end of a tick is flushed as a line of its own when the tick
//   returns, so a tick's output never leaks into the next one (which may replay in a fresh instance).
// - Without the capability those calls answer ENOTCAPABLE (76) and record nothing.
// Outside a tick (start, _initialize, agent_init, agent_resume, agent_checkpoint) nothing may depend
// on the world, because a replay instance runs the same code with no log to serve: the clock reads 0
// and random_get serves a stream derived from the agent's DID (INIT_RANDOM_DOMAIN), identical in every
// instance, live or replayed, on any node, with or without "rand". Lines written before the first tick
// are recorded in the load's log (printed when a fresh agent starts); lines written by
// agent_checkpoint are dropped, and random_get there fills zeros (it observes nothing).
// Whatever the phase, what a guest call writes to stdout/stderr also goes to its output tail
// (hostcalls/output-tail.ts), and the calls it was refused ENOTCAPABLE are noted: its failure names both.
import { createHash } from "node:crypto";
import { type HostContext, guestBytes, i64Payload, payloadOf, readI64Payload } from "../hostcalls/context.js";
import { recordLine } from "../hostcalls/log.js";
import { MAX_FAILURE_OUTPUT_BYTES } from "../hostcalls/output-tail.js";
import { randBytes } from "../hostcalls/rand.js";
import { HostcallId, LOG_MAX_BYTES } from "../hostcalls/registry.js";
import { Errno, SERVED, takesFd } from "./preview1.js";

/** What the import policy decided for an agent's WASI imports (structured-cloned to workers). */
export interface WasiPlan {
  /** The preview1 functions the module imports (each linked: served or a stub). */
  functions: string[];
  /** The manifest grants these: WASI serves clock, rand and stdout/stderr through them. */
  clock: boolean;
  rand: boolean;
  log: boolean;
  /** The agent's DID: the seed of the deterministic random stream outside ticks. */
  identity: string;
}

/** Domain separation for the out-of-tick random stream: SHA-256(domain ‖ 0 ‖ DID ‖ u64le(block)). */
export const INIT_RANDOM_DOMAIN = "igord/wasi/init-random/v1";
/** The resolution clock_res_get reports: the node's clock has microsecond resolution. */
export const CLOCK_RESOLUTION_NS = 1000n;

const CLOCK_REALTIME = 0;
const CLOCK_MONOTONIC = 1;
const STDOUT = 1;
const STDERR = 2;
const FILETYPE_CHARACTER_DEVICE = 2;
const RIGHTS_FD_WRITE = 1n << 6n;
const FDSTAT_BYTES = 24;
const IOVEC_BYTES = 8;
const NEWLINE = 0x0a;

/** The WASI functions served through a capability, and which. */
export const CAPABILITY_OF_CALL = { clock_time_get: "clock", random_get: "rand", fd_write: "log" } as const;
export type RefusedCall = keyof typeof CAPABILITY_OF_CALL;

/** Raised by proc_exit: unwinds the guest; the sandbox turns it into AGENT_EXIT. */
export class WasiExit extends Error {
  constructor(readonly exitCode: number) {
    super(`proc_exit(${exitCode})`);
  }
}

export type WasiPhase = "init" | "tick" | "between";

export interface WasiImage {
  phase: WasiPhase;
  stream: { block: bigint; left: Uint8Array<ArrayBuffer> };
  monotonicFloor: bigint;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- WebAssembly import functions are untyped at this boundary.
type HostFn = (...args: any[]) => unknown;

/** The deterministic byte stream served by random_get outside ticks. */
class IdentityStream {
  private block = 0n;
  private left = new Uint8Array(0);

  constructor(private readonly identity: string) {}

  /** Where the stream is (its bytes are never written to, so the rest of a block is kept as is). */
  position(): { block: bigint; left: Uint8Array<ArrayBuffer> } {
    return { block: this.block, left: this.left };
  }

  seek(p: { block: bigint; left: Uint8Array<ArrayBuffer> }): void {
    this.block = p.block;
    this.left = p.left;
  }

  fill(out: Uint8Array): void {
    // A plan never bound to its agent would serve another stream than its other instances: fail loudly.
    if (this.identity === "") throw new Error("the WASI plan is not bound to the agent's DID (withAgentIdentity)");
    let at = 0;
    while (at < out.length) {
      if (this.left.length === 0) {
        const n = new Uint8Array(8);
        new DataView(n.buffer).setBigUint64(0, this.block++, true);
        this.left = new Uint8Array(createHash("sha256").update(INIT_RANDOM_DOMAIN).update("\0").update(this.identity).update(n).digest());
      }
      const take = Math.min(this.left.length, out.length - at);
      out.set(this.left.subarray(0, take), at);
      this.left = this.left.subarray(take);
      at += take;
    }
  }
}

export class WasiHost {
  private phase: WasiPhase = "init";
  /** agent_checkpoint is running: what it writes is dropped (its partial lines too), whatever the phase. */
  private checkpointing = false;
  /** Bytes written to stdout/stderr since their last newline, and how many. */
  private readonly pending = new Map<number, { parts: Uint8Array[]; bytes: number }>();
  private readonly stream: IdentityStream;
  private monotonicFloor = 0n;
  private readonly rand: (ptr: number, len: number) => number;
  /** The WASI functions the current guest call was refused ENOTCAPABLE, in first-refused order. */
  private readonly refused = new Set<RefusedCall>();

  constructor(
    private readonly ctx: HostContext,
    private readonly plan: WasiPlan,
  ) {
    this.stream = new IdentityStream(plan.identity);
    this.rand = randBytes(ctx);
  }

  /**
   * The host-side state a replay instance's reset must restore with its memory and globals
   * (replay/instance-pool.ts): where the out-of-tick random stream is, the phase, the monotonic floor.
   */
  image(): WasiImage {
    return { phase: this.phase, stream: this.stream.position(), monotonicFloor: this.monotonicFloor };
  }

  restore(image: WasiImage): void {
    this.phase = image.phase;
    this.stream.seek(image.stream);
    this.monotonicFloor = image.monotonicFloor;
    this.pending.clear();
    this.refused.clear();
  }

  /** A guest call starts: the calls a failure of it names are the ones it is refused. */
  beginCall(): void {
    this.refused.clear();
  }

  /** The WASI calls the current guest call was refused for want of a capability (a Rust println! without "log" panics). */
  refusedCalls(): RefusedCall[] {
    return [...this.refused];
  }

  beginTick(): void {
    this.phase = "tick";
  }

  /** The tick returned: its partial lines become lines, and the guest is between ticks. */
  endTick(): void {
    this.flush();
    this.phase = "between";
  }

  /** agent_checkpoint runs (after a tick, or at a load, when the phase is still "init"). */
  beginCheckpoint(): void {
    this.checkpointing = true;
  }

  endCheckpoint(): void {
    this.checkpointing = false;
  }

  /** agent_init / agent_resume returned: partial lines written while loading become lines. */
  settle(): void {
    this.flush();
  }

  imports(): Record<string, HostFn> {
    const served: Record<(typeof SERVED)[number], HostFn> = {
      args_get: () => Errno.success,
      args_sizes_get: (countPtr: number, sizePtr: number) => this.writeZeros(countPtr, sizePtr),
      environ_get: () => Errno.success,
      environ_sizes_get: (countPtr: number, sizePtr: number) => this.writeZeros(countPtr, sizePtr),
      clock_res_get: (id: number, ptr: number) => this.clockRes(id, ptr),
      clock_time_get: (id: number, _precision: bigint, ptr: number) => this.clockTime(id, ptr),
      fd_close: (fd: number) => (isStdio(fd) ? Errno.success : Errno.badf),
      fd_fdstat_get: (fd: number, ptr: number) => this.fdstat(fd, ptr),
      fd_prestat_get: () => Errno.badf,
      fd_seek: (fd: number) => (isStdio(fd) ? Errno.spipe : Errno.badf),
      fd_write: (fd: number, iovs: number, n: number, nwritten: number) => this.fdWrite(fd, iovs, n, nwritten),
      proc_exit: (code: number) => {
        throw new WasiExit(code >>> 0);
      },
      random_get: (ptr: number, len: number) => this.random(ptr, len),
      sched_yield: () => Errno.success,
    };
    const out: Record<string, HostFn> = {};
    for (const name of this.plan.functions) {
      out[name] = (served as Record<string, HostFn>)[name] ?? (takesFd(name) ? (fd: number) => (isStdio(fd) ? Errno.nosys : Errno.badf) : () => Errno.nosys);
    }
    return out;
  }

  private view(ptr: number, len: number): DataView | null {
    const b = guestBytes(this.ctx, ptr, len);
    return b === null ? null : new DataView(b.buffer, b.byteOffset, b.length);
  }

  private writeZeros(a: number, b: number): number {
    const va = this.view(a, 4);
    const vb = this.view(b, 4);
    if (!va || !vb) return Errno.fault;
    va.setUint32(0, 0, true);
    vb.setUint32(0, 0, true);
    return Errno.success;
  }

  private clockRes(id: number, ptr: number): number {
    if (id !== CLOCK_REALTIME && id !== CLOCK_MONOTONIC) return Errno.inval;
    const v = this.view(ptr, 8);
    if (!v) return Errno.fault;
    v.setBigUint64(0, CLOCK_RESOLUTION_NS, true);
    return Errno.success;
  }

  private clockTime(id: number, ptr: number): number {
    if (id !== CLOCK_REALTIME && id !== CLOCK_MONOTONIC) return Errno.inval;
    if (!this.view(ptr, 8)) return Errno.fault;
    let ns = 0n;
    if (this.phase === "tick") {
      if (!this.plan.clock) return this.refuse("clock_time_get");
      const live = (): bigint => {
        const now = this.ctx.world.nowNs();
        return id === CLOCK_MONOTONIC && now < this.monotonicFloor ? this.monotonicFloor : now;
      };
      ns = readI64Payload(this.ctx.source.observe(HostcallId.clock_now, () => ({ result: 0, payload: i64Payload(live()) }), payloadOf(8)).payload);
      if (id === CLOCK_MONOTONIC && ns > this.monotonicFloor) this.monotonicFloor = ns;
    }
    // Re-read: the observation cannot grow memory, but the view must be of the current buffer.
    this.view(ptr, 8)?.setBigUint64(0, BigInt.asUintN(64, ns), true);
    return Errno.success;
  }

  private random(ptr: number, len: number): number {
    const n = len >>> 0;
    if (this.phase === "tick") {
      if (!this.plan.rand) return this.refuse("random_get");
      const r = this.rand(ptr, n);
      return r >= 0 ? Errno.success : r === -4 ? Errno.fault : Errno.inval;
    }
    const dst = guestBytes(this.ctx, ptr, n);
    if (dst === null) return Errno.fault;
    // agent_checkpoint observes nothing, live as in replay: the node runs it after every live tick
    // but replay only where it checks a state, so drawing from the stream there would serve a live
    // instance other bytes than a replay instance (and move the stream for what follows). Zeros, as
    // ZERO_SOURCE answers igor.rand_bytes there.
    if (this.checkpointing) dst.fill(0);
    else this.stream.fill(dst);
    return Errno.success;
  }

  private refuse(call: RefusedCall): number {
    this.refused.add(call);
    return Errno.notcapable;
  }

  private fdstat(fd: number, ptr: number): number {
    if (!isStdio(fd)) return Errno.badf;
    const v = this.view(ptr, FDSTAT_BYTES);
    if (!v) return Errno.fault;
    for (let i = 0; i < FDSTAT_BYTES; i++) v.setUint8(i, 0);
    v.setUint8(0, FILETYPE_CHARACTER_DEVICE);
    // No seek/tell rights: wasi-libc's isatty() says yes, so stdio line-buffers stdout.
    v.setBigUint64(8, RIGHTS_FD_WRITE, true);
    return Errno.success;
  }

  private fdWrite(fd: number, iovs: number, count: number, nwrittenPtr: number): number {
    if (!isStdio(fd)) return Errno.badf;
    if (!this.plan.log) return this.refuse("fd_write");
    const n = count >>> 0;
    const vec = this.view(iovs, n * IOVEC_BYTES);
    if (!vec || !this.view(nwrittenPtr, 4)) return Errno.fault;
    // Every buffer is checked before any byte is taken: a fault writes nothing. Nothing is copied
    // here: a guest may name the same memory many times over (4,096 iovecs of 128 KiB were 512 MiB
    // copied); the bytes are read in place and copied only into a line, which the tick's log bounds.
    const memory = guestBytes(this.ctx, 0, 0)?.buffer.byteLength ?? 0;
    let total = 0;
    for (let i = 0; i < n; i++) {
      const len = vec.getUint32(i * IOVEC_BYTES + 4, true);
      if (vec.getUint32(i * IOVEC_BYTES, true) + len > memory) return Errno.fault;
      total += len;
    }
    this.keepTail(vec, n, total);
    if (this.phase !== "between" && !this.checkpointing) {
      for (let i = 0; i < n; i++) {
        const b = guestBytes(this.ctx, vec.getUint32(i * IOVEC_BYTES, true), vec.getUint32(i * IOVEC_BYTES + 4, true));
        if (b !== null) this.append(fd, b);
      }
    }
    this.view(nwrittenPtr, 4)?.setUint32(0, total, true);
    return Errno.success;
  }

  /** Keeps the end of this write for a failure to quote: walks back from its last iovec, copying at most the tail's size. */
  private keepTail(vec: DataView, n: number, total: number): void {
    const tail = this.ctx.tail;
    if (!tail) return;
    const parts: Uint8Array[] = [];
    let need = MAX_FAILURE_OUTPUT_BYTES;
    for (let i = n - 1; i >= 0 && need > 0; i--) {
      const ptr = vec.getUint32(i * IOVEC_BYTES, true);
      const len = vec.getUint32(i * IOVEC_BYTES + 4, true);
      const take = Math.min(len, need);
      const b = take > 0 ? guestBytes(this.ctx, ptr + len - take, take) : null;
      if (b === null) continue;
      parts.push(b);
      need -= take;
    }
    if (total > MAX_FAILURE_OUTPUT_BYTES) tail.markCut();
    for (let i = parts.length - 1; i >= 0; i--) tail.add(parts[i]!);
  }

  private append(fd: number, bytes: Uint8Array): void {
    let start = 0;
    for (let i = 0; i < bytes.length; i++) {
      if (bytes[i] !== NEWLINE) continue;
      this.push(fd, bytes.subarray(start, i));
      this.line(fd);
      start = i + 1;
    }
    this.push(fd, bytes.subarray(start));
  }

  /** Adds to fd's partial line; one that reaches LOG_MAX_BYTES is a line of its own. */
  private push(fd: number, bytes: Uint8Array): void {
    let rest = bytes;
    while (rest.length > 0) {
      const p = this.pending.get(fd) ?? { parts: [], bytes: 0 };
      const take = Math.min(rest.length, LOG_MAX_BYTES - p.bytes);
      // A copy: the guest's memory may change before the line is complete.
      p.parts.push(rest.slice(0, take));
      p.bytes += take;
      this.pending.set(fd, p);
      rest = rest.subarray(take);
      if (p.bytes >= LOG_MAX_BYTES) this.line(fd);
    }
  }

  /** fd's buffered bytes become one log line (an empty line included). */
  private line(fd: number): void {
    const { parts, bytes } = this.pending.get(fd) ?? { parts: [], bytes: 0 };
    this.pending.delete(fd);
    const line = new Uint8Array(bytes);
    let at = 0;
    for (const p of parts) {
      line.set(p, at);
      at += p.length;
    }
    recordLine(this.ctx, () => line);
  }

  private flush(): void {
    for (const fd of [STDOUT, STDERR]) if (this.pending.has(fd)) this.line(fd);
  }
}

function isStdio(fd: number): boolean {
  return fd === STDOUT || fd === STDERR;
}
