// Hashing and byte helpers every layer shares (checkpoint lineage, replay, migration, the loader):
// a home of their own, so domain modules do not borrow them from one another.
import { hash } from "node:crypto";

/** A SHA-256 digest's length. */
const SHA256_BYTES = 32;

// crypto.hash (one shot) costs about two thirds of createHash().update().digest() on small inputs.
// Its digest is taken as a "binary" (latin1) string (one character a byte) and copied into a fresh 32-byte
// array: asked for a "buffer", crypto.hash took 1.0–2.1 µs a call against 0.4–0.6 µs for a string
// (the "buffer" encoding goes through normalizeEncoding's slow path, and the digest came in an
// ArrayBuffer of its own, outside V8's heap, that the GC tracks and frees one by one), while a
// typed array of 32 bytes lives on the heap. A checkpoint hashes three to four times on the main
// thread (docs/BENCHMARKS.md, "CPU per checkpoint over all threads").
export function sha256(bytes: Uint8Array): Uint8Array {
  return sha256Into(bytes, new Uint8Array(SHA256_BYTES), 0);
}

/**
 * SHA-256 of `bytes` written into `out` at `offset`; returns `out`. For a digest that is only the
 * input of another hash, or one that belongs in a buffer already there: no array of its own (on the
 * checkpoint path, each was a typed array and its ArrayBuffer that lived until the commit).
 */
export function sha256Into(bytes: Uint8Array, out: Uint8Array, offset: number): Uint8Array {
  if (offset < 0 || offset + SHA256_BYTES > out.length) throw new RangeError(`a SHA-256 digest does not fit at ${offset} of ${out.length} bytes`);
  const s = hash("sha256", bytes, "binary");
  for (let i = 0; i < SHA256_BYTES; i++) out[offset + i] = s.charCodeAt(i);
  return out;
}

export function sha256Hex(bytes: Uint8Array): string {
  return hash("sha256", bytes, "hex");
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

// Buffer.compare takes plain Uint8Arrays: no Buffer views to build (replay compares a log line a tick).
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}
