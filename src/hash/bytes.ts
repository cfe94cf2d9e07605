// Hashing and byte helpers every layer shares (checkpoint lineage, replay, migration, the loader):
// a home of their own, so domain modules do not borrow them from one another.
import { hash } from "node:crypto";

// crypto.hash (one shot) costs about two thirds of createHash().update().digest() on small inputs.
export function sha256(bytes: Uint8Array): Uint8Array {
  const b = hash("sha256", bytes, "buffer");
  // Its own 32-byte ArrayBuffer (not Node's pool): a plain view of it, no copy.
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

export function sha256Hex(bytes: Uint8Array): string {
  return hash("sha256", bytes, "hex");
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

// Buffer.compare takes plain Uint8Arrays: no Buffer views to build (replay compares a log line a tick).
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.compare(a, b) === 0;
}
