// Signer thread: Ed25519 signatures for the main thread, with each key's KeyObject cached.
import { parentPort } from "node:worker_threads";
import type { KeyObject } from "node:crypto";
import { sign } from "node:crypto";
import { keyFromSeed } from "./keys.js";

export interface SignRequest {
  id: number;
  seeds: Uint8Array[];
  messages: Uint8Array[];
}

export interface SignReply {
  id: number;
  signatures?: Uint8Array[];
  error?: string;
}

const MAX_CACHED_KEYS = 20_000;
const keys = new Map<string, KeyObject>();

function keyFor(seed: Uint8Array): KeyObject {
  const k = Buffer.from(seed).toString("base64");
  let key = keys.get(k);
  if (!key) {
    if (keys.size >= MAX_CACHED_KEYS) keys.clear();
    key = keyFromSeed(seed).privateKeyObject;
    keys.set(k, key);
  }
  return key;
}

parentPort?.on("message", (req: SignRequest) => {
  try {
    const signatures = req.messages.map((m, i) => new Uint8Array(sign(null, m, keyFor(req.seeds[i] as Uint8Array))));
    parentPort?.postMessage({ id: req.id, signatures } satisfies SignReply);
  } catch (e) {
    parentPort?.postMessage({ id: req.id, error: (e as Error).message } satisfies SignReply);
  }
});
