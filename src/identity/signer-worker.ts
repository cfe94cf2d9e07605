// Signer thread: Ed25519 signatures for the main thread. A chunk arrives packed (its messages in one
// transferred buffer) and names its keys by number; the pool sends each key once, as its KeyObject (a
// clone shares the parsed key, so no thread parses it again) and its libsodium secret key, and the
// thread keeps it until told to start over. libsodium signs where it loads and the message is short
// (SODIUM_SIGN_MAX_BYTES), else node:crypto (identity/sodium.ts). The signatures go back in one
// transferred buffer, 64 bytes each, in request order.
import { parentPort } from "node:worker_threads";
import type { KeyObject } from "node:crypto";
import { sign } from "node:crypto";
import { SODIUM_SIGN_MAX_BYTES, sodiumSignInto } from "./sodium.js";

const SIGNATURE_BYTES = 64;

export interface SignRequest {
  id: number;
  /** Forget every key kept so far before adding `add` (the pool's count of kept keys hit its bound). */
  reset: boolean;
  /** Keys this thread has not been sent yet: [key number, private KeyObject, libsodium secret key]. */
  add: [number, KeyObject, Uint8Array][];
  /** The key number of each message. */
  keys: Uint32Array;
  /** Message i is data[offsets[i], offsets[i + 1]). */
  offsets: Uint32Array;
  data: Uint8Array;
}

export interface SignReply {
  id: number;
  /** Signature i at [64 i, 64 i + 64). */
  signatures?: Uint8Array;
  error?: string;
}

const kept = new Map<number, { object: KeyObject; secret: Uint8Array }>();

function signChunk(req: SignRequest): Uint8Array {
  if (req.reset) kept.clear();
  for (const [n, object, secret] of req.add) kept.set(n, { object, secret });
  const out = new Uint8Array(req.keys.length * SIGNATURE_BYTES);
  for (let i = 0; i < req.keys.length; i++) {
    const key = kept.get(req.keys[i] as number);
    if (!key) throw new Error(`signer thread has no key number ${req.keys[i]}`);
    const message = req.data.subarray(req.offsets[i], req.offsets[i + 1]);
    const bySodium = message.length <= SODIUM_SIGN_MAX_BYTES && sodiumSignInto(key.secret, message, out, i * SIGNATURE_BYTES);
    if (!bySodium) out.set(sign(null, message, key.object), i * SIGNATURE_BYTES);
  }
  return out;
}

parentPort?.on("message", (req: SignRequest) => {
  try {
    const signatures = signChunk(req);
    parentPort?.postMessage({ id: req.id, signatures } satisfies SignReply, [signatures.buffer as ArrayBuffer]);
  } catch (e) {
    parentPort?.postMessage({ id: req.id, error: (e as Error).message } satisfies SignReply);
  }
});
