// What the parts of the migration service share: the node it runs in (MigrationHost), protocol ids
// and limits, the outcome types, and the helpers every side uses to classify what a peer said.
import type { Logger } from "pino";
import type { Epoch, Lease, LeaseTiming } from "../authority/lease.js";
import type { NodeConfig } from "../config/schema.js";
import { ErrorCode, IgordError } from "../errors.js";
import type { NodeCapabilities } from "../hostcalls/capabilities.js";
import type { ModuleCache, PreparedAgent } from "../loader/prepare.js";
import type { Checkpoint } from "../checkpoint/codec.js";
import type { Ed25519Key } from "../identity/keys.js";
import type { PreplacedAgent } from "../scheduler/preplaced.js";
import type { NodeMetrics } from "../metrics/metrics.js";
import { type FrameChannel, MAX_CONTROL_FRAME_BYTES } from "../p2p/frames.js";
import type { P2pHost } from "../p2p/host.js";
import type { PeerRegistry } from "../p2p/peer-registry.js";
import type { LineageEvent, SqliteStore } from "../store/sqlite-store.js";
import type { WorkerPool } from "../wasm/pool.js";
import type { Arrival } from "./package-with-offer.js";
import type { RetryPolicy } from "./retry.js";

export const MIGRATE_PROTOCOL = "/igord/migrate/1.0.0";
/** igor's price protocol; the answer also carries the node's capability set. */
export const PRICE_PROTOCOL = "/igor/price/1.0.0";
export const STATUS_PROTOCOL = "/igord/migration-status/1.0.0";
/** A price or status query that takes longer counts as a failure of that peer. */
export const QUERY_TIMEOUT_MS = 5_000;
/**
 * How long a migrate stream stays open after a migration went through, for the next migration to
 * the same peer (saves opening a stream: a multistream-select round trip and peer-store writes).
 */
export const MIGRATE_IDLE_MS = 30_000;
/** Longest manifest accepted in an offer (it travels in a control frame). */
export const MAX_MANIFEST_CHARS = 128 * 1024;
/**
 * What an offer's other fields may take of its control frame (ids, hashes, epochs, flags, at most
 * MAX_SOURCE_ADDRS addresses of MAX_SOURCE_ADDR_CHARS): the manifest, as JSON, gets the rest.
 */
export const OFFER_FIELDS_BYTES = 16 * 1024;

/**
 * Refuses to migrate an agent whose manifest no offer can carry (the loader takes manifests up to
 * 256 KiB; an offer carries MAX_MANIFEST_CHARS, as JSON within its control frame): before the agent
 * stops, naming the manifest, instead of after its handoff, as every target's frame error.
 */
export function refuseUnofferableManifest(agentId: string, manifest: string): void {
  const room = MAX_CONTROL_FRAME_BYTES - OFFER_FIELDS_BYTES;
  const bytes = Buffer.byteLength(JSON.stringify(manifest));
  if (manifest.length <= MAX_MANIFEST_CHARS && bytes <= room) return;
  throw new IgordError(
    ErrorCode.MigrationFrameTooLarge,
    `agent "${agentId}" cannot migrate: its manifest (${manifest.length} characters, ${bytes} bytes in an offer) is over what an offer carries (${MAX_MANIFEST_CHARS} characters, ${room} bytes); it keeps running here`,
    { details: { chars: manifest.length, bytes, maxChars: MAX_MANIFEST_CHARS, maxBytes: room } },
  );
}
/** Concurrent incoming streams per protocol and connection. */
export const MAX_INBOUND_STREAMS = 64;
/**
 * A refusal's message is cut to this length: a peer's before it is logged or shown, this node's
 * before it is sent (a reason longer than a frame would end the stream unanswered, which the source
 * must take as "maybe delivered").
 */
export const MAX_REMOTE_MESSAGE_CHARS = 2000;
/** How long stopping waits for protocol handlers still running. */
export const STOP_GRACE_MS = 5_000;
/**
 * Package bytes held in memory at once, node-wide, in units of --max-package-size; counted as they
 * arrive, not as announced (a peer that announces and stalls holds nothing).
 */
export const MAX_CONCURRENT_PACKAGES = 2;
/**
 * What one peer's announced packages may reserve at once, in units of --max-package-size: less than
 * the node-wide total, so one peer can never hold every other peer's admission.
 */
export const MAX_PACKAGES_PER_PEER = 1;
/**
 * The share of --migration-timeout that admission's replays of a package's window may take, counted
 * from the package's arrival: the source waits one --migration-timeout for the result, so a refusal
 * for a replay too slow (MIGRATION_REPLAY_TIMEOUT) reaches it in time, with room for the other checks
 * and the commit. A replay is stopped between two ticks; a tick started runs under the tick timeout.
 */
export const ADMISSION_REPLAY_SHARE = 0.5;
/** How often finished migration records are pruned and stuck ones timed out. */
export const MIGRATION_SWEEP_MS = 60_000;

export interface MigrationHost {
  config: NodeConfig;
  logger: Logger;
  store: SqliteStore;
  metrics: NodeMetrics;
  capabilities: NodeCapabilities;
  cache: ModuleCache;
  pool: WorkerPool;
  leaseTiming: LeaseTiming;
  nodeKey: Parameters<typeof P2pHost.start>[0]["key"];
  /**
   * Stops ticking the agent and checkpoints it (Scheduler.detach); `alsoWrite` (the handoff) goes in
   * that checkpoint's transaction, unless no tick happened since the last one (nothing is written).
   */
  detach(agentId: string, alsoWrite?: (head: { hash: Uint8Array; tick: bigint; budget: bigint }) => void): Promise<{ lease: Lease | null }>;
  /** Whether the agent was detached before a tick told it that its last run was interrupted (its package says so). */
  handedOffUntold(agentId: string): boolean;
  /**
   * Starts (or restarts) ticking a stored agent this node owns (its last window already replayed, or
   * not), taking over `preplaced` when it was placed with what the stored rows say. With
   * `heldUntil`, its first tick waits for that promise, and it is withdrawn should it reject.
   */
  resume(agentId: string, windowVerified?: boolean, preplaced?: PreplacedAgent, heldUntil?: Promise<unknown>): Promise<void>;
  /**
   * Places the live instance of an admitted agent from its head (not yet stored), for the resume
   * after the reception's commit to take over (scheduler/preplaced.ts).
   */
  preplace(a: { prepared: PreparedAgent; identity: Ed25519Key; head: Checkpoint; headHash: Uint8Array; events: readonly LineageEvent[]; interrupted: boolean }): PreplacedAgent;
  /** Forgets an agent that now lives elsewhere (quarantine entries and the like). */
  retired(agentId: string): void;
  /** Shows an agent this node owns but cannot run as quarantined, with why. */
  quarantine(agentId: string, err: IgordError): void;
  runningAgents(): number;
  stopping(): boolean;
}

/** Fault-injection points for tests of the failure paths (never set in production). */
export interface MigrationHooks {
  /** Source side: HANDOFF_INITIATED is durable, nothing sent yet but perhaps the offer (sendEarlyOffer). */
  afterHandoffRecorded?(agentId: string): void;
  /** Source side: the whole package is on the wire, no confirmation read yet. */
  afterPackageSent?(agentId: string): void;
  /** Source side: the target confirmed, RETIRED not yet written. */
  afterConfirmed?(agentId: string): void;
  /** Target side: called once the whole package is in, before admission (throwing = crash here). */
  afterPackage?(agentId: string, abort: (err: Error) => void): void;
  /** Target side, pending reception: the pending row is durable and admitted, the source's `durable` not read yet (throwing = crash here). */
  afterPendingStored?(agentId: string, abort: (err: Error) => void): void;
  /** Target side: the package admitted (and the source's `durable` in, when it sends one), nothing stored yet (throwing = crash here). */
  beforeStore?(agentId: string, abort: (err: Error) => void): void;
  /** Target side: called after the agent is stored, before the confirmation is sent. */
  beforeConfirm?(agentId: string, abort: (err: Error) => void): void;
}

export type MigrationOutcome = "done" | "reverted" | "recovery";

export interface MigrationResult {
  id: number;
  agentId: string;
  outcome: MigrationOutcome;
  /** The target that took the agent (done) or holds the unresolved handoff (recovery), as given. */
  target: string | null;
  /** Its peer id, and the address the connection to it actually used. */
  peer: string | null;
  address: string | null;
  attempts: number;
  fallbacks: number;
  /** The epoch the target owns the agent at (done). */
  epoch: Epoch | null;
  error: { code: string; message: string } | null;
  durationMs: number;
}

export interface Target {
  text: string;
  peerId: string;
}

/** A failed attempt: the error, and whether the package had gone out or the target refused it. */
export class AttemptError extends Error {
  constructor(
    readonly error: IgordError,
    readonly sent: boolean,
    readonly refused: boolean,
  ) {
    super(error.message);
  }
}

const KNOWN_CODES = new Set<string>(Object.values(ErrorCode));

export function remoteError(o: Record<string, unknown>, what: string): IgordError {
  const code = typeof o.code === "string" ? o.code : "";
  const message = typeof o.message === "string" ? o.message.slice(0, MAX_REMOTE_MESSAGE_CHARS) : "(no message)";
  return KNOWN_CODES.has(code)
    ? new IgordError(code as ErrorCode, `${what}: ${message}`, { details: { remote: true } })
    : new IgordError(ErrorCode.MigrationRefused, `${what} (${code || "no code"}): ${message}`, { details: { remote: true, remoteCode: code } });
}

/** Whether --accept-migrations (and --trusted-peer) let this node take agents from `peer`. */
export function acceptsFrom(cfg: Pick<NodeConfig, "acceptMigrations" | "trustedPeers">, peer: string): boolean {
  return cfg.acceptMigrations === "any" || (cfg.acceptMigrations === "trusted" && cfg.trustedPeers.includes(peer));
}

export function asIgord(e: unknown, fallback: ErrorCode): IgordError {
  return e instanceof IgordError ? e : new IgordError(fallback, (e as Error).message, { cause: e });
}

export const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });

/**
 * A signal that aborts when `parent` does or `timeoutMs` has passed, and `clear()` to call once it is
 * no longer needed, which detaches it from `parent`. Not AbortSignal.any([timeout, parent]): on Node
 * 20 that adds an entry to the parent's dependant set that is never taken out, and the parent here is
 * the service's stop signal, alive as long as the node (one entry per stream opened, for months).
 */
export function boundedSignal(parent: AbortSignal, timeoutMs: number): { signal: AbortSignal; clear(): void } {
  const call = new AbortController();
  const onAbort = (): void => call.abort(parent.reason);
  const timer = setTimeout(() => call.abort(new DOMException(`timed out after ${timeoutMs}ms`, "TimeoutError")), timeoutMs);
  timer.unref();
  if (parent.aborted) onAbort();
  else parent.addEventListener("abort", onAbort, { once: true });
  return {
    signal: call.signal,
    clear: () => {
      clearTimeout(timer);
      parent.removeEventListener("abort", onAbort);
    },
  };
}

/** What a peer says of itself in answer to a price query. */
export interface ProbeAnswer {
  price: bigint;
  capabilities: string[];
  /** Whether it would take an agent from the asker. */
  acceptsMigrations: boolean;
  /** Agents it runs and its --max-agents (0 = no limit); null when it did not say. */
  agents: number | null;
  maxAgents: number | null;
}

/** An agent being received: from an offer taken to its storing or refusal, or a pending reception being stored. */
export interface Receiving {
  peer: string;
  epoch: Epoch;
  /** Date.now() when it began. */
  since: number;
}

/** What the source, target and resolution parts get from the service that owns them. */
export interface MigrationContext {
  readonly host: MigrationHost;
  readonly hooks: MigrationHooks;
  readonly peers: PeerRegistry;
  readonly outgoing: Set<string>;
  /** Agents being received here, by id: whom from, at which epoch, since when (listed as `receiving`). */
  readonly receiving: Map<string, Receiving>;
  /** Agents that arrived from a peer that takes a package with the offer, to send them back so (package-with-offer.ts). */
  readonly arrivals: Map<string, Arrival>;
  readonly cfg: NodeConfig;
  readonly log: Logger;
  readonly retry: RetryPolicy;
  /** Aborted when the service stops. */
  readonly stopSignal: AbortSignal;
  /** This node's peer id ("" before the p2p host started). */
  readonly peerId: string;
  /** Listen addresses with /p2p/<peer id>, as other nodes dial them. */
  addresses(): string[];
  /** Parses a target (multiaddr with /p2p/ or a peer id); never this node itself. */
  target(text: string): Target;
  /** Asks a target its price, capabilities and whether it takes agents from this node (MIGRATION_DIAL_FAILED when it cannot be reached). */
  probe(t: Target): Promise<ProbeAnswer>;
  /** The remote address of the open connection to a peer, if any. */
  addressOf(peerId: string): string | null;
  /** Opens a protocol stream to a target (MIGRATION_DIAL_FAILED when it cannot). */
  open(t: Target, protocol: string, timeoutMs?: number): Promise<FrameChannel>;
  /** Runs a background task the service waits for (boundedly) when it stops. */
  track<T>(p: Promise<T>): void;
}
