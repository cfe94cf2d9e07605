// Little-endian Encoder/Decoder compatible with igor's SDK: Bytes/String are [u32 len][data],
// Bool is one byte. The decoder's error is sticky: after a short read every value reads as zero.

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

  reset(): Encoder {
    this.len = 0;
    return this;
  }

  u8(v: u8): Encoder { this.grow(1); store<u8>(this.buf.dataStart + this.len, v); this.len += 1; return this; }
  bool(v: bool): Encoder { return this.u8(v ? 1 : 0); }
  u32(v: u32): Encoder { this.grow(4); store<u32>(this.buf.dataStart + this.len, v); this.len += 4; return this; }
  i32(v: i32): Encoder { return this.u32(<u32>v); }
  u64(v: u64): Encoder { this.grow(8); store<u64>(this.buf.dataStart + this.len, v); this.len += 8; return this; }
  i64(v: i64): Encoder { return this.u64(<u64>v); }
  f64(v: f64): Encoder { return this.u64(reinterpret<u64>(v)); }

  raw(data: Uint8Array): Encoder {
    this.grow(data.length);
    memory.copy(this.buf.dataStart + this.len, data.dataStart, data.length);
    this.len += data.length;
    return this;
  }

  bytes(data: Uint8Array): Encoder { this.u32(<u32>data.length); return this.raw(data); }
  string(s: string): Encoder { return this.bytes(Uint8Array.wrap(String.UTF8.encode(s))); }

  get length(): i32 { return this.len; }

  /** A view of the encoded bytes; valid until the next write. */
  view(): Uint8Array { return this.buf.subarray(0, this.len); }

  finish(): Uint8Array { return this.buf.slice(0, this.len); }
}

export class Decoder {
  private pos: i32 = 0;
  private failed: bool = false;

  constructor(private data: Uint8Array) {}

  private take(n: i32): bool {
    if (this.failed || n < 0 || this.pos + n > this.data.length) { this.failed = true; return false; }
    return true;
  }

  u8(): u8 { if (!this.take(1)) return 0; const v = load<u8>(this.data.dataStart + this.pos); this.pos += 1; return v; }
  bool(): bool { return this.u8() != 0; }
  u32(): u32 { if (!this.take(4)) return 0; const v = load<u32>(this.data.dataStart + this.pos); this.pos += 4; return v; }
  i32(): i32 { return <i32>this.u32(); }
  u64(): u64 { if (!this.take(8)) return 0; const v = load<u64>(this.data.dataStart + this.pos); this.pos += 8; return v; }
  i64(): i64 { return <i64>this.u64(); }
  f64(): f64 { return reinterpret<f64>(this.u64()); }

  fixedBytes(n: i32): Uint8Array {
    if (!this.take(n)) return new Uint8Array(0);
    const out = this.data.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  bytes(): Uint8Array { const n = this.u32(); return this.fixedBytes(<i32>n); }
  string(): string { const b = this.bytes(); return String.UTF8.decode(b.buffer); }

  get remaining(): i32 { return this.data.length - this.pos; }
  err(): bool { return this.failed; }
}
