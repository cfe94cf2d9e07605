// Typed wrappers over the `igor` host module. Every call is recorded by the host in the tick's event
// log, so agents that observe the world only through these stay replayable.

@external("igor", "clock_now") declare function igor_clock_now(): i64;
@external("igor", "rand_bytes") declare function igor_rand_bytes(ptr: usize, len: i32): i32;
@external("igor", "log_emit") declare function igor_log_emit(ptr: usize, len: i32): void;
@external("igor", "wallet_balance") declare function igor_wallet_balance(): i64;
@external("igor", "node_price") declare function igor_node_price(): i64;
@external("igor", "emit") declare function igor_emit(ptr: usize, len: i32): i32;

/** Wall-clock time in Unix nanoseconds (capability `clock`). */
export function clockNow(): i64 {
  return igor_clock_now();
}

/** Fills `buf` with random bytes (capability `rand`); returns the host's code (bytes written, or < 0). */
export function randBytes(buf: Uint8Array): i32 {
  return igor_rand_bytes(buf.dataStart, buf.byteLength);
}

/** A random u64 built from 8 random bytes (capability `rand`). */
export function randU64(): u64 {
  const buf = new Uint8Array(8);
  randBytes(buf);
  return load<u64>(buf.dataStart);
}

/** Emits a UTF-8 log line through the host (capability `log`). Empty messages are skipped. */
export function log(msg: string): void {
  if (msg.length == 0) return;
  const bytes = String.UTF8.encode(msg);
  igor_log_emit(changetype<usize>(bytes), bytes.byteLength);
}

/** The agent's remaining budget in microcents (capability `wallet`). */
export function walletBalance(): i64 {
  return igor_wallet_balance();
}

/** The node's price in microcents per second (capability `pricing`). */
export function nodePrice(): i64 {
  return igor_node_price();
}

/**
 * Publishes a message to the agent's outbox when the tick commits (capability `emit`). A side
 * effect: only the agent's active owner may; returns 0, or -3 without authority, -2 above 64 KiB.
 */
export function emit(msg: string): i32 {
  const bytes = String.UTF8.encode(msg);
  return igor_emit(changetype<usize>(bytes), bytes.byteLength);
}
