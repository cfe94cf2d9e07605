// The migration-status query is signed with the agent's own key (which only its holder has), so
// only the node that handed the agent off can make a target fence it. The target's peer id is in
// the signed bytes: a query recorded at one node cannot be replayed at another.
import type { Epoch } from "../authority/lease.js";
import { publicKeyFromDid } from "../identity/did.js";
import { type Ed25519Key, signBytes, verifyBytes } from "../identity/keys.js";

const DOMAIN = "igord-migration-status-v1";

export function statusSigningBytes(agentId: string, did: string, epoch: Epoch, targetPeerId: string): Uint8Array {
  return new TextEncoder().encode([DOMAIN, agentId, did, epoch.major.toString(), epoch.generation.toString(), targetPeerId].join("\n"));
}

export function signStatusQuery(key: Ed25519Key, agentId: string, did: string, epoch: Epoch, targetPeerId: string): Uint8Array {
  return signBytes(key, statusSigningBytes(agentId, did, epoch, targetPeerId));
}

export function verifyStatusQuery(signature: Uint8Array, agentId: string, did: string, epoch: Epoch, targetPeerId: string): boolean {
  let key: Uint8Array;
  try {
    key = publicKeyFromDid(did);
  } catch {
    return false;
  }
  return verifyBytes(key, statusSigningBytes(agentId, did, epoch, targetPeerId), signature);
}
