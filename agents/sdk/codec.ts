// Little-endian Encoder/Decoder compatible with igor's SDK: Bytes/String are [u32 len][data],
// Bool is one byte. The decoder's error is sticky: after a short read every value reads as zero.

/** The one NaN an Encoder writes (a quiet NaN, sign clear, no payload). */
const CANONICAL_NAN_BITS: u64 = 0x7ff8000000000000;

/** Writes values little-endian into a growing buffer: what `Agent.marshal` is given. */
export class Encoder {
  private buf: Uint8Array = new Uint8Array(64);
  private len: i32 = 0;

  private grow(n: i32): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length << 1;
    while (cap < this.len + n) cap <<= 1;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  /** Empties the buffer (keeps its capacity). */
  reset(): Encoder {
    this.len = 0;
    return this;
  }

  /** One byte. */
  u8(v: u8): Encoder { this.grow(1); store<u8>(this.buf.dataStart + this.len, v); this.len += 1; return this; }
  /** One byte: 1 or 0. */
  bool(v: bool): Encoder { return this.u8(v ? 1 : 0); }
  /** Four bytes, little-endian. */
  u32(v: u32): Encoder { this.grow(4); store<u32>(this.buf.dataStart + this.len, v); this.len += 4; return this; }
  /** Four bytes, two's complement, little-endian. */
  i32(v: i32): Encoder { return this.u32(<u32>v); }
  /** Eight bytes, little-endian. */
  u64(v: u64): Encoder { this.grow(8); store<u64>(this.buf.dataStart + this.len, v); this.len += 8; return this; }
  /** Eight bytes, two's complement, little-endian. */
  i64(v: i64): Encoder { return this.u64(<u64>v); }
  /**
   * The IEEE-754 bits as eight bytes, little-endian; every NaN as the canonical quiet NaN
   * (0x7ff8000000000000). WebAssembly leaves a NaN's sign and payload from arithmetic to the machine
   * (x86 gives 0xfff8…, ARM 0x7ff8…): a state that kept them would differ between the node that ran
   * a tick and one that replays it on the other.
   */
  f64(v: f64): Encoder { return this.u64(v != v ? CANONICAL_NAN_BITS : reinterpret<u64>(v)); }

  /** The bytes as they are, without a length (read back with `Decoder.fixedBytes`). */
  raw(data: Uint8Array): Encoder {
    this.grow(data.length);
    memory.copy(this.buf.dataStart + this.len, data.dataStart, data.length);
    this.len += data.length;
    return this;
  }

  /** A u32 length, then the bytes. */
  bytes(data: Uint8Array): Encoder { this.u32(<u32>data.length); return this.raw(data); }
  /** A u32 length, then the UTF-8 bytes. */
  string(s: string): Encoder { return this.bytes(Uint8Array.wrap(String.UTF8.encode(s))); }

  /** Bytes written since the last reset. */
  get length(): i32 { return this.len; }

  /** A view of the encoded bytes; valid until the next write. */
  view(): Uint8Array { return this.buf.subarray(0, this.len); }

  /** A copy of the encoded bytes. */
  finish(): Uint8Array { return this.buf.slice(0, this.len); }
}

/** Reads what an Encoder wrote, in the same order: what `Agent.unmarshal` is given. A short read sets `err()` for good and every later read returns zero/empty. */
export class Decoder {
  private pos: i32 = 0;
  private failed: bool = false;

  /** Reads from `data` (not copied). */
  constructor(private data: Uint8Array) {}

  private take(n: i32): bool {
    // Compared as what is left, not as pos + n: a length near 2^31 overflowed that sum past the check.
    if (this.failed || n < 0 || n > this.data.length - this.pos) { this.failed = true; return false; }
    return true;
  }

  /** One byte. */
  u8(): u8 { if (!this.take(1)) return 0; const v = load<u8>(this.data.dataStart + this.pos); this.pos += 1; return v; }
  /** One byte; anything but 0 is true. */
  bool(): bool { return this.u8() != 0; }
  /** Four bytes, little-endian. */
  u32(): u32 { if (!this.take(4)) return 0; const v = load<u32>(this.data.dataStart + this.pos); this.pos += 4; return v; }
  /** Four bytes, two's complement, little-endian. */
  i32(): i32 { return <i32>this.u32(); }
  /** Eight bytes, little-endian. */
  u64(): u64 { if (!this.take(8)) return 0; const v = load<u64>(this.data.dataStart + this.pos); this.pos += 8; return v; }
  /** Eight bytes, two's complement, little-endian. */
  i64(): i64 { return <i64>this.u64(); }
  /** Eight bytes as IEEE-754 bits. */
  f64(): f64 { return reinterpret<f64>(this.u64()); }

  /** Exactly `n` bytes (a copy), as written by `Encoder.raw`. */
  fixedBytes(n: i32): Uint8Array {
    if (!this.take(n)) return new Uint8Array(0);
    const out = this.data.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** A u32 length, then that many bytes (a copy). */
  bytes(): Uint8Array { const n = this.u32(); return this.fixedBytes(<i32>n); }
  /** A u32 length, then that many UTF-8 bytes. */
  string(): string { const b = this.bytes(); return String.UTF8.decode(b.buffer); }

  /** Bytes not read yet. */
  get remaining(): i32 { return this.data.length - this.pos; }
  /** True once any read ran past the end (sticky). */
  err(): bool { return this.failed; }
}
