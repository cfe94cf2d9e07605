// `igord resume --checkpoint <file> --wasm <file> [--identity <file>] [--budget]`: continue an agent
// from a checkpoint file (another node's export, a backup). The checkpoint must verify against the
// WASM and the identity, and may only extend what this node already stores: never overwrite it.
import { existsSync } from "node:fs";
import { isSigned, MAX_CHECKPOINT_BYTES, parseCheckpoint } from "../checkpoint/codec.js";
import { checkpointHash, verifyCheckpointSignature, versionStepProblem } from "../checkpoint/lineage.js";
import { commitFromBlob } from "../store/commits.js";
import { equalBytes, hex } from "../hash/bytes.js";
import { ErrorCode, IgordError } from "../errors.js";
import { didFromPublicKey } from "../identity/did.js";
import { decodeIdentityFile, type Ed25519Key } from "../identity/keys.js";
import { checkAgentId, deriveAgentId, MAX_WASM_BYTES } from "../loader/prepare.js";
import { sha256Hex } from "../hash/bytes.js";
import { findManifest, MAX_MANIFEST_BYTES, parseManifest } from "../manifest/manifest.js";
import { compareEpochs, importedLease } from "../authority/lease.js";
import { IDENTITY_FILE_MAX_BYTES, readFile } from "./export-folder.js";
import { openStore } from "./data-dir-store.js";
import { importRecord } from "./lineage.js";
import { refuseIfHeld } from "../node/agent-lifecycle.js";
import { ownedLease } from "../node/stored-resume.js";

export interface ResumeOptions {
  checkpoint: string;
  wasm: string;
  identity?: string;
  agentId?: string;
  manifest?: string;
}

/** A resume's files, read and checked on their own: the checkpoint, its WASM and an identity file given. */
export interface ResumeFiles {
  agentId: string;
  blob: Uint8Array;
  cp: ReturnType<typeof parseCheckpoint>;
  wasm: Uint8Array;
  wasmHash: string;
  /** From --identity; without it, the identity stored for the agent. */
  identity?: Ed25519Key;
}

/**
 * Checks what the files alone can say (the checkpoint's format, WASM hash and signature, the identity
 * file's key), before the node starts: a refused checkpoint starts no listener and takes no lock.
 */
export function readResumeFiles(o: ResumeOptions): ResumeFiles {
  const agentId = checkAgentId(o.agentId ?? deriveAgentId(o.wasm));
  const blob = readFile(o.checkpoint, "checkpoint", MAX_CHECKPOINT_BYTES);
  const cp = parseCheckpoint(blob, o.checkpoint);
  const wasm = readFile(o.wasm, "WASM", MAX_WASM_BYTES);
  const wasmHash = sha256Hex(wasm);
  if (hex(cp.wasmHash) !== wasmHash) {
    throw new IgordError(ErrorCode.CheckpointWasmMismatch, `${o.checkpoint} was made for WASM ${hex(cp.wasmHash).slice(0, 16)}…, not ${o.wasm} (${wasmHash.slice(0, 16)}…)`);
  }
  if (!isSigned(cp)) {
    throw new IgordError(ErrorCode.CheckpointSignature, `${o.checkpoint} is v0x0${cp.version}, unsigned; igord resumes only signed (v0x04 or v0x05) checkpoints`);
  }
  if (!verifyCheckpointSignature(cp)) throw new IgordError(ErrorCode.CheckpointSignature, `${o.checkpoint}: signature INVALID`);
  if (!o.identity) return { agentId, blob, cp, wasm, wasmHash };
  // A file that cannot be read says so with its own code; one that does not decode is IDENTITY_CORRUPT.
  const identityBytes = readFile(o.identity, "identity", IDENTITY_FILE_MAX_BYTES);
  let identity: Ed25519Key;
  try {
    identity = decodeIdentityFile(identityBytes);
  } catch (e) {
    throw new IgordError(ErrorCode.IdentityCorrupt, `${o.identity}: ${(e as Error).message}`);
  }
  checkSigner(identity, cp, o.checkpoint);
  return { agentId, blob, cp, wasm, wasmHash, identity };
}

function checkSigner(identity: Ed25519Key, cp: ResumeFiles["cp"], path: string): void {
  if (equalBytes(identity.publicKey, cp.publicKey)) return;
  throw new IgordError(
    ErrorCode.CheckpointForeignKey,
    `${path} is signed by ${didFromPublicKey(cp.publicKey)}, not by the agent's identity ${didFromPublicKey(identity.publicKey)}`,
  );
}

/** Stores the checkpoint (checked by readResumeFiles) as the agent's head. Returns the agent id. */
export function stageResume(dataDir: string, o: ResumeOptions, files: ResumeFiles): string {
  const { agentId, blob, cp, wasm, wasmHash } = files;
  const store = openStore(dataDir);
  try {
    const row = store.agent(agentId);
    if (row) {
      // Before anything is written (a checkpoint appended, a --budget top-up signed after it): an agent
      // held here (stopped by the operator or a divergence, removed) runs again only by igord start,
      // and one moved away or in a handoff is not this node's to extend.
      refuseIfHeld(row, "igord resume");
      ownedLease(store, agentId);
    }
    let identity: Ed25519Key;
    if (files.identity) {
      identity = files.identity;
    } else if (row) {
      identity = store.identity(agentId);
      checkSigner(identity, cp, o.checkpoint);
    } else {
      throw new IgordError(ErrorCode.IdentityMissing, `agent "${agentId}" is not stored on this node: pass its identity with --identity <file>`);
    }
    const hash = checkpointHash(blob);
    if (!row) {
      const manifestPath = o.manifest ?? findManifest(o.wasm);
      if (o.manifest && !existsSync(o.manifest)) throw new IgordError(ErrorCode.ManifestNotFound, `manifest ${o.manifest} does not exist`);
      const manifest = manifestPath ? new TextDecoder().decode(readFile(manifestPath, "manifest", MAX_MANIFEST_BYTES)) : "{}";
      parseManifest(manifest, manifestPath ?? "<none>");
      const did = didFromPublicKey(identity.publicKey);
      const seen = { major: cp.epochMajor, generation: cp.epochGeneration };
      const lease = importedLease(seen);
      const record = importRecord(identity, { hash, tick: cp.tick, budget: cp.budget }, [], seen, lease.epoch, "resume --checkpoint");
      store.importAgent({ agentId, did, wasmHash, wasmBytes: wasm, manifest, identity, lease }, [commitFromBlob(agentId, blob, "resumed")], [record]);
      return agentId;
    }
    if (row.wasmHash !== wasmHash) {
      throw new IgordError(ErrorCode.CheckpointWasmMismatch, `agent "${agentId}" is stored with a different WASM (${row.wasmHash.slice(0, 16)}…)`);
    }
    const head = store.head(agentId);
    if (head && equalBytes(head.hash, hash)) return agentId; // already the head: nothing to add
    if (head && equalBytes(cp.prevHash, head.hash)) {
      const stepDown = versionStepProblem(head.blob[0] as number, cp.version);
      if (stepDown) throw new IgordError(ErrorCode.CheckpointVersion, `${o.checkpoint} (tick ${cp.tick}) may not follow the head stored for "${agentId}": ${stepDown}; nothing was changed`);
      const stored = store.lease(agentId);
      store.atomically(() => {
        store.appendCheckpoint(commitFromBlob(agentId, blob, "resumed"));
        // The file may come from a copy that ran at a newer epoch than this node's lease.
        if (stored?.state !== "ACTIVE_OWNER") return;
        const fileEpoch = { major: cp.epochMajor, generation: cp.epochGeneration };
        const seen = compareEpochs(fileEpoch, stored.epoch) > 0 ? fileEpoch : stored.epoch;
        const lease = importedLease(seen);
        store.writeLease(agentId, { state: stored.state, epoch: stored.epoch }, { ...lease, expiresAtMs: stored.expiresAtMs });
        store.addLineageEvent(agentId, importRecord(identity, { hash, tick: cp.tick, budget: cp.budget }, [], seen, lease.epoch, "resume --checkpoint"));
      });
      return agentId;
    }
    throw new IgordError(
      ErrorCode.CheckpointChainBroken,
      `${o.checkpoint} (tick ${cp.tick}) does not continue the history stored for "${agentId}" (head at tick ${head?.tick ?? "none"}); nothing was changed`,
    );
  } finally {
    store.close();
  }
}
