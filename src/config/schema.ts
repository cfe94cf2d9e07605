// The one configuration schema: every field's flag, env var, config-file key, default and validation.
// Precedence: flags > IGORD_* env vars > --config <file> (JSON) > defaults.
import { cpus, homedir } from "node:os";
import { join } from "node:path";
import { formatUnits, MAX_MICROCENTS, parseUnits } from "../budget/money.js";
import { parseNetwork } from "../hostcalls/http-destination.js";
import { IMPLEMENTED_CAPABILITIES } from "../hostcalls/registry.js";
import { peerIdProblem } from "./peer-id.js";
import { DIVERGENCE_POLICIES, type DivergencePolicy, REPLAY_MODES, type ReplayMode } from "../replay/policy.js";
import { type HostPort, parseDurationMs, parseHostPort, parseSizeBytes } from "./units.js";

export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Upper bound for any per-tick deadline: a tick longer than this is a bug, not a workload. */
export const MAX_TICK_TIMEOUT_MS = 10 * 60_000;
export const MAX_WORKERS = 64;
/** --outbox-retention's default: an agent emitting every tick cannot grow the database without end. */
export const DEFAULT_OUTBOX_RETENTION_BYTES = 64 * 1024 ** 2;
/**
 * --event-log-max-bytes' default: a tick's log may hold 16 MiB (MAX_TICK_EVENT_BYTES), so the
 * 100,000 ticks kept by default could be terabytes; an agent's own max_storage_bytes is its choice.
 */
export const DEFAULT_EVENT_LOG_MAX_BYTES = 64 * 1024 ** 2;
/**
 * --history-retention's default: an agent checkpointing every 5 s keeps ~5.7 hours of history
 * (4,096 to 4,159 checkpoints, pruned 64 at a time), not every checkpoint for ever (~17,000 a day),
 * and a first hop to a node that never held it verifies at most that many.
 */
export const DEFAULT_HISTORY_RETENTION = 4096;

export interface NodeConfig {
  agentsDir: string;
  /** A changed .wasm in the agents dir upgrades its agent (igord upgrade) instead of being shown as a stale binary. */
  upgradeAgentsDir: boolean;
  dataDir: string;
  /** Node price in microcents per second. */
  price: bigint;
  /** Budget given to a new agent, in microcents. */
  budget: bigint;
  capabilities: readonly string[];
  /** Non-public networks (CIDRs) agents' HTTP requests may connect to; public addresses are always allowed. */
  httpPrivateNetworks: readonly string[];
  tickIntervalMs: number;
  /** Agents whose next tick is further away than this leave their worker until then (0 = never). */
  hibernateAfterMs: number;
  fastTickIntervalMs: number;
  tickTimeoutMs: number;
  control: HostPort | null;
  logLevel: LogLevel;
  workers: number;
  checkpointIntervalMs: number;
  sync: "full" | "normal";
  receiptIntervalMs: number;
  replayWindow: number;
  replayMode: ReplayMode;
  verifyInterval: number;
  replayOnDivergence: DivergencePolicy;
  eventLogRetention: EventLogRetention;
  /** Per agent, bytes of stored event logs kept, the newest, whatever eventLogRetention says; 0: no byte bound. */
  eventLogMaxBytes: number;
  historyRetention: number;
  /** Per agent, bytes of emitted messages (the outbox) kept, the newest; 0 keeps all. */
  outboxRetentionBytes: number;
  leaseDurationMs: number;
  leaseGraceMs: number;
  leaseRenewalWindow: number;
  /** libp2p listen multiaddrs; empty = no p2p service (--listen off). */
  listen: readonly string[];
  bootstrap: readonly string[];
  mdns: boolean;
  acceptMigrations: "any" | "trusted" | "none";
  trustedPeers: readonly string[];
  /** Largest budget (microcents) an incoming agent may bring. */
  maxIncomingBudget: bigint;
  /** Agents received from one peer that run here (or are being received) at most; 0 = no limit. */
  maxAgentsPerPeer: number;
  /** Agents this node runs at most (incoming migrations are refused beyond it); 0 = no limit. */
  maxAgents: number;
  migrationRetries: number;
  migrationRetryDelayMs: number;
  migrationMaxDelayMs: number;
  migrationTimeoutMs: number;
  migrationRetentionMs: number;
  /** Largest migration package accepted or sent, in bytes. */
  maxPackageBytes: number;
  /** How often known peers are pinged and asked for price and capabilities. */
  peerRefreshMs: number;
}

/** A size such as 64MiB, or "0" (what 0 means: `zero`). */
function sizeOrZero(zero: string): (raw: RawValue) => number {
  return (raw) => {
    const s = asString(raw).trim();
    if (s === "0") return 0;
    const bytes = parseSizeBytes(s);
    if (bytes === null || bytes <= 0) throw new Error(`must be a size such as 64MiB, or ${zero}`);
    return bytes;
  };
}

/** Per agent: keep stored event logs for this many ticks, or up to this many bytes (0 ticks = all). */
export type EventLogRetention = { ticks: number } | { bytes: number };

/** A raw value as it arrives: a string from a flag or env var, any JSON value from the file. */
export type RawValue = unknown;

export interface FieldSpec<K extends keyof NodeConfig = keyof NodeConfig> {
  key: K;
  flag: string;
  valueName: string;
  description: string;
  defaultValue: () => NodeConfig[K];
  defaultText: string;
  parse: (raw: RawValue) => NodeConfig[K];
}

/**
 * A directory path. A leading `~` only a shell expands: from a config file, an IGORD_ variable or a
 * `--flag=~/…` it would be a folder named `~` in the working directory (the node's keys in it, and
 * `rm -rf ~` to remove it takes the home directory), so it is refused with the path it likely meant.
 */
function dirPath(raw: RawValue): string {
  const s = asString(raw);
  if (s.length === 0) throw new Error("must not be empty");
  if (s === "~" || s.startsWith("~/")) {
    throw new Error(`starts with ~, which only a shell expands (here it would be a folder named "~" in the working directory): give the full path, such as ${join(homedir(), s.slice(1))}`);
  }
  return s;
}

function asString(raw: RawValue): string {
  if (typeof raw === "string") return raw;
  if (typeof raw === "number" || typeof raw === "boolean") return String(raw);
  throw new Error(`expected a string, got ${JSON.stringify(raw)}`);
}

function money(positive: boolean) {
  return (raw: RawValue): bigint => {
    const v = parseUnits(asString(raw));
    if (positive && v <= 0n) throw new Error("must be greater than 0");
    if (v > MAX_MICROCENTS) throw new Error(`must be at most ${formatUnits(MAX_MICROCENTS)} (a signed 64-bit count of microcents)`);
    return v;
  };
}

function duration(min: number, max: number) {
  return (raw: RawValue): number => {
    // A JSON number is refused as a unitless flag is (it was taken as milliseconds): 0 alone has no unit to miss.
    if (typeof raw === "number" && raw !== 0) throw new Error(`needs its unit: "${raw}ms" or "${raw}s", not ${raw}`);
    const ms = typeof raw === "number" ? raw : parseDurationMs(asString(raw));
    if (!Number.isInteger(ms) || ms < min) throw new Error(`must be at least ${min}ms`);
    if (ms > max) throw new Error(`must be at most ${max}ms`);
    return ms;
  };
}

function capabilityList(raw: RawValue): readonly string[] {
  const items = Array.isArray(raw)
    ? raw.map(asString)
    : asString(raw)
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
  const unknown = items.filter((c) => !(IMPLEMENTED_CAPABILITIES as readonly string[]).includes(c));
  if (unknown.length > 0) {
    throw new Error(
      `unknown capability ${unknown.map((c) => `"${c}"`).join(", ")} (this node implements ${IMPLEMENTED_CAPABILITIES.join(", ")})`,
    );
  }
  return [...new Set(items)].sort();
}

/** A repeatable flag arrives comma-joined (see cli/options.ts); a config file may give an array. */
function stringList(check: (item: string) => void) {
  return (raw: RawValue): readonly string[] => {
    const items = (Array.isArray(raw) ? raw.map(asString) : asString(raw).split(","))
      .map((s) => s.trim())
      .filter((s) => s.length > 0);
    for (const item of items) check(item);
    return [...new Set(items)];
  };
}

function multiaddrText(item: string): void {
  if (!item.startsWith("/")) throw new Error(`"${item}" is not a multiaddr (e.g. /ip4/127.0.0.1/tcp/4001)`);
}

/** A peer's address: a multiaddr ending in /p2p/<peer-id> (a bootstrap peer's identity must be known, and it is a migration candidate). */
function peerAddrText(item: string): void {
  multiaddrText(item);
  const id = /\/p2p\/([^/]+)$/.exec(item)?.[1];
  if (id === undefined) throw new Error(`"${item}" has no /p2p/<peer-id> at its end; the peer's identity must be known`);
  peerIdText(id);
}

function networkText(item: string): void {
  const net = parseNetwork(item);
  if (typeof net === "string") throw new Error(net);
}

/** A peer id, decoded: base58 text of the right length that was no peer id was taken, and never matched a peer. */
function peerIdText(item: string): void {
  const problem = peerIdProblem(item);
  if (problem !== null) throw new Error(`"${item}" is not a peer id (base58, e.g. 12D3KooW…): ${problem}`);
}

function bool(raw: RawValue): boolean {
  if (raw === true || raw === "true" || raw === "1" || raw === "on") return true;
  if (raw === false || raw === "false" || raw === "0" || raw === "off") return false;
  throw new Error("must be true or false");
}

function wholeNumber(max: number) {
  return (raw: RawValue): number => {
    const s = asString(raw);
    if (!/^\d+$/.test(s)) throw new Error("must be a whole number (0 or more)");
    const n = Number(s);
    if (n > max) throw new Error(`must be at most ${max}`);
    return n;
  };
}

function oneOf<T extends string>(values: readonly T[]) {
  return (raw: RawValue): T => {
    const s = asString(raw);
    if (!(values as readonly string[]).includes(s)) throw new Error(`must be one of ${values.join(", ")}`);
    return s as T;
  };
}

function field<K extends keyof NodeConfig>(spec: FieldSpec<K>): FieldSpec<K> {
  return spec;
}

const defaultWorkers = (): number => Math.max(1, Math.min(cpus().length, 8));

export const FIELDS = [
  field({
    key: "agentsDir",
    flag: "agents-dir",
    valueName: "dir",
    description: "directory of agent .wasm files loaded at start and watched for new ones",
    defaultValue: () => "./agents",
    defaultText: "./agents",
    parse: dirPath,
  }),
  field({
    key: "upgradeAgentsDir",
    flag: "upgrade-agents-dir",
    valueName: "true|false",
    description: "a changed .wasm in the agents dir upgrades its running agent (as igord upgrade does) instead of being listed as a stale binary",
    defaultValue: () => false,
    defaultText: "false",
    parse: bool,
  }),
  field({
    key: "dataDir",
    flag: "data-dir",
    valueName: "dir",
    description: "directory for the node's state (control token, database)",
    defaultValue: () => "./data",
    defaultText: "./data",
    parse: dirPath,
  }),
  field({
    key: "price",
    flag: "price",
    valueName: "units",
    description: "node price in units per second of agent execution",
    defaultValue: () => 1000n,
    defaultText: "0.001",
    parse: money(true),
  }),
  field({
    key: "budget",
    flag: "budget",
    valueName: "units",
    description: "budget given to a new agent, in units",
    defaultValue: () => 1_000_000n,
    defaultText: "1.0",
    parse: money(true),
  }),
  field({
    key: "capabilities",
    flag: "capabilities",
    valueName: "list",
    description: "capabilities this node offers to agents (comma-separated)",
    defaultValue: () => [...IMPLEMENTED_CAPABILITIES],
    defaultText: IMPLEMENTED_CAPABILITIES.join(","),
    parse: capabilityList,
  }),
  field({
    key: "httpPrivateNetworks",
    flag: "http-private-networks",
    valueName: "cidrs",
    description: "non-public networks agents' HTTP requests may reach, comma-separated (e.g. 127.0.0.0/8,10.1.0.0/16); none = public addresses only",
    defaultValue: () => [],
    defaultText: "none",
    parse: (raw) => (raw === "none" ? [] : stringList(networkText)(raw)),
  }),
  field({
    key: "tickIntervalMs",
    flag: "tick-interval",
    valueName: "duration",
    description: "time between an agent's ticks",
    defaultValue: () => 1000,
    defaultText: "1s",
    parse: duration(1, 24 * 3_600_000),
  }),
  field({
    key: "hibernateAfterMs",
    flag: "hibernate-after",
    valueName: "duration",
    description: "an agent whose next tick is further away than this leaves its worker (instance dropped, memory freed) and resumes from its committed state when due (0 = never)",
    defaultValue: () => 30_000,
    defaultText: "30s",
    parse: duration(0, 24 * 3_600_000),
  }),
  field({
    key: "fastTickIntervalMs",
    flag: "fast-tick-interval",
    valueName: "duration",
    description: "time between ticks while an agent reports more work",
    defaultValue: () => 10,
    defaultText: "10ms",
    parse: duration(0, 24 * 3_600_000),
  }),
  field({
    key: "tickTimeoutMs",
    flag: "tick-timeout",
    valueName: "duration",
    description: "a tick running longer is stopped and its agent reported",
    defaultValue: () => 15_000,
    defaultText: "15s",
    parse: duration(10, MAX_TICK_TIMEOUT_MS),
  }),
  field({
    key: "control",
    flag: "control",
    valueName: "host:port|off",
    description: "address of the local control API (bearer token in <data-dir>/control.token)",
    defaultValue: () => ({ host: "127.0.0.1", port: 7420 }),
    defaultText: "127.0.0.1:7420",
    parse: (raw) => {
      const s = asString(raw);
      return s === "off" ? null : parseHostPort(s);
    },
  }),
  field({
    key: "logLevel",
    flag: "log-level",
    valueName: "level",
    description: `log level (${LOG_LEVELS.join("|")})`,
    defaultValue: () => "info" as LogLevel,
    defaultText: "info",
    parse: (raw) => {
      const s = asString(raw);
      if (!(LOG_LEVELS as readonly string[]).includes(s))
        throw new Error(`must be one of ${LOG_LEVELS.join(", ")}`);
      return s as LogLevel;
    },
  }),
  field({
    key: "workers",
    flag: "workers",
    valueName: "n",
    description: "worker threads that run agents, each started when an agent needs it (default: CPU cores, at most 8)",
    defaultValue: defaultWorkers,
    defaultText: "cores",
    parse: (raw) => {
      const s = asString(raw);
      if (!/^\d+$/.test(s)) throw new Error("must be a whole number");
      const n = Number(s);
      if (n < 1 || n > MAX_WORKERS) throw new Error(`must be between 1 and ${MAX_WORKERS}`);
      return n;
    },
  }),
  field({
    key: "checkpointIntervalMs",
    flag: "checkpoint-interval",
    valueName: "duration",
    description: "how often every agent's state is checkpointed (0 = only at shutdown, exhaustion and failure)",
    defaultValue: () => 5000,
    defaultText: "5s",
    parse: duration(0, 24 * 3_600_000),
  }),
  field({
    key: "sync",
    flag: "sync",
    valueName: "full|normal",
    description: "SQLite durability: full fsyncs every commit; normal may lose the last commits on power loss",
    defaultValue: () => "full" as const,
    defaultText: "full",
    parse: (raw) => {
      const s = asString(raw);
      if (s !== "full" && s !== "normal") throw new Error('must be "full" or "normal"');
      return s;
    },
  }),
  field({
    key: "receiptIntervalMs",
    flag: "receipt-interval",
    valueName: "duration",
    description: "how often a periodic checkpoint also gets a node-signed receipt (always when an agent stops; 0 = every checkpoint)",
    defaultValue: () => 60_000,
    defaultText: "1m",
    parse: duration(0, 24 * 3_600_000),
  }),
  field({
    key: "replayWindow",
    flag: "replay-window",
    valueName: "ticks",
    description: "tick snapshots kept per agent for replay verification (at least 1, and at least --verify-interval, with --replay-mode periodic or full)",
    defaultValue: () => 16,
    defaultText: "16",
    parse: wholeNumber(100_000),
  }),
  field({
    key: "replayMode",
    flag: "replay-mode",
    valueName: "mode",
    description: `replay verification: ${REPLAY_MODES.join("|")} (periodic/full verify the agent's own ticks)`,
    defaultValue: () => "full" as ReplayMode,
    defaultText: "full",
    parse: oneOf(REPLAY_MODES),
  }),
  field({
    key: "verifyInterval",
    flag: "verify-interval",
    valueName: "ticks",
    description: "every N ticks, verify every unverified snapshot with observations (0 disables; at most --replay-window); also whenever the window is full of them",
    defaultValue: () => 5,
    defaultText: "5",
    parse: wholeNumber(1_000_000),
  }),
  field({
    key: "replayOnDivergence",
    flag: "replay-on-divergence",
    valueName: "policy",
    description: `what a divergence does: ${DIVERGENCE_POLICIES.join("|")}`,
    defaultValue: () => "log" as DivergencePolicy,
    defaultText: "log",
    parse: oneOf(DIVERGENCE_POLICIES),
  }),
  field({
    key: "eventLogRetention",
    flag: "event-log-retention",
    valueName: "ticks|size",
    description: "per agent, stored event logs kept: a tick count (e.g. 100000; 0 keeps all) or a size (e.g. 64MiB; the newest segment is always kept)",
    defaultValue: () => ({ ticks: 100_000 }),
    defaultText: "100000",
    parse: (raw): EventLogRetention => {
      const s = asString(raw).trim();
      const bytes = parseSizeBytes(s);
      if (bytes !== null) {
        if (bytes <= 0) throw new Error("a size must be greater than 0");
        return { bytes };
      }
      return { ticks: wholeNumber(Number.MAX_SAFE_INTEGER)(s) };
    },
  }),
  field({
    key: "eventLogMaxBytes",
    flag: "event-log-max-bytes",
    valueName: "size",
    description: "per agent, bytes of stored event logs kept whatever --event-log-retention keeps: the oldest segments past it are pruned (the newest segment is always kept; 0: no byte bound)",
    defaultValue: () => DEFAULT_EVENT_LOG_MAX_BYTES,
    defaultText: "64MiB",
    parse: sizeOrZero("0 for no byte bound"),
  }),
  field({
    key: "outboxRetentionBytes",
    flag: "outbox-retention",
    valueName: "size",
    description: "per agent, bytes of emitted messages (the outbox the control API serves) kept, the newest; older ticks' messages are dropped as new ones are written (0 keeps all)",
    defaultValue: () => DEFAULT_OUTBOX_RETENTION_BYTES,
    defaultText: "64MiB",
    parse: sizeOrZero("0 to keep every message"),
  }),
  field({
    key: "historyRetention",
    flag: "history-retention",
    valueName: "checkpoints",
    description: "per agent, checkpoints kept: the newest N (up to N/4 more: pruned N/4, at most 64, at a time) behind a signed base that igord verify checks (0 keeps all; else at least 2)",
    defaultValue: () => DEFAULT_HISTORY_RETENTION,
    defaultText: String(DEFAULT_HISTORY_RETENTION),
    parse: (raw) => {
      const n = wholeNumber(Number.MAX_SAFE_INTEGER)(raw);
      if (n === 1) throw new Error("must be 0 (keep all) or at least 2");
      return n;
    },
  }),
  field({
    key: "leaseDurationMs",
    flag: "lease-duration",
    valueName: "duration",
    description: "how long an agent's lease on this node lasts before it must be renewed (at least --tick-interval; 0 disables leases)",
    defaultValue: () => 60_000,
    defaultText: "60s",
    parse: duration(0, 24 * 3_600_000),
  }),
  field({
    key: "leaseGraceMs",
    flag: "lease-grace",
    valueName: "duration",
    description: "past expiry plus this grace, the agent goes to RECOVERY_REQUIRED and stops ticking",
    defaultValue: () => 10_000,
    defaultText: "10s",
    parse: duration(0, 24 * 3_600_000),
  }),
  field({
    key: "leaseRenewalWindow",
    flag: "lease-renewal-window",
    valueName: "fraction",
    description: "renew when this fraction of the lease duration remains (between 0 and 1)",
    defaultValue: () => 0.5,
    defaultText: "0.5",
    parse: (raw) => {
      const s = asString(raw);
      const n = Number(s);
      if (!/^\d*\.?\d+$/.test(s) || !(n > 0 && n < 1)) throw new Error("must be a fraction strictly between 0 and 1");
      return n;
    },
  }),
  field({
    key: "listen",
    flag: "listen",
    valueName: "multiaddr|off",
    description: "libp2p listen address, repeatable (off = no peer-to-peer service)",
    defaultValue: () => ["/ip4/0.0.0.0/tcp/4001"],
    defaultText: "/ip4/0.0.0.0/tcp/4001",
    parse: (raw) => (raw === "off" ? [] : stringList(multiaddrText)(raw)),
  }),
  field({
    key: "bootstrap",
    flag: "bootstrap",
    valueName: "multiaddr",
    description: "peer to connect to at start (with /p2p/<peer-id>), repeatable (needs --listen); a candidate for migrations without --to",
    defaultValue: () => [],
    defaultText: "none",
    parse: (raw) => (raw === "none" ? [] : stringList(peerAddrText)(raw)),
  }),
  field({
    key: "mdns",
    flag: "mdns",
    valueName: "true|false",
    description: "discover peers on the local network with mDNS",
    defaultValue: () => false,
    defaultText: "false",
    parse: bool,
  }),
  field({
    key: "acceptMigrations",
    flag: "accept-migrations",
    valueName: "any|trusted|none",
    description: "which peers may migrate agents to this node (trusted = only --trusted-peer; any = every peer that connects)",
    defaultValue: () => "trusted" as const,
    defaultText: "trusted",
    parse: oneOf(["any", "trusted", "none"] as const),
  }),
  field({
    key: "trustedPeers",
    flag: "trusted-peer",
    valueName: "peer-id",
    description: "peer allowed to send agents with --accept-migrations trusted, repeatable",
    defaultValue: () => [],
    defaultText: "none",
    parse: (raw) => (raw === "none" ? [] : stringList(peerIdText)(raw)),
  }),
  field({
    key: "maxIncomingBudget",
    flag: "max-incoming-budget",
    valueName: "units",
    description: "largest budget an incoming agent may bring; an agent with more is refused",
    defaultValue: () => 10_000_000n,
    defaultText: "10.0",
    parse: money(true),
  }),
  field({
    key: "maxAgentsPerPeer",
    flag: "max-agents-per-peer",
    valueName: "n",
    description: "agents received from one peer that this node runs or is receiving at most (0 = no limit)",
    defaultValue: () => 100,
    defaultText: "100",
    parse: wholeNumber(1_000_000),
  }),
  field({
    key: "maxAgents",
    flag: "max-agents",
    valueName: "n",
    description: "agents this node runs at most; incoming migrations beyond it are refused (0 = no limit)",
    defaultValue: () => 0,
    defaultText: "0",
    parse: wholeNumber(1_000_000),
  }),
  field({
    key: "migrationRetries",
    flag: "migration-retries",
    valueName: "n",
    description: "attempts per migration target before the next candidate",
    defaultValue: () => 3,
    defaultText: "3",
    parse: (raw) => {
      const n = wholeNumber(100)(raw);
      if (n < 1) throw new Error("must be at least 1");
      return n;
    },
  }),
  field({
    key: "migrationRetryDelayMs",
    flag: "migration-retry-delay",
    valueName: "duration",
    description: "wait before the first retry of a migration attempt (doubles per retry)",
    defaultValue: () => 1000,
    defaultText: "1s",
    parse: duration(0, 3_600_000),
  }),
  field({
    key: "migrationMaxDelayMs",
    flag: "migration-max-delay",
    valueName: "duration",
    description: "longest wait between migration retries",
    defaultValue: () => 30_000,
    defaultText: "30s",
    parse: duration(0, 3_600_000),
  }),
  field({
    key: "migrationTimeoutMs",
    flag: "migration-timeout",
    valueName: "duration",
    description: "longest a migration may stay in one state (dial, transfer, awaiting confirmation)",
    defaultValue: () => 30_000,
    defaultText: "30s",
    parse: duration(100, 3_600_000),
  }),
  field({
    key: "migrationRetentionMs",
    flag: "migration-retention",
    valueName: "duration",
    description: "finished migration records are pruned after this long",
    defaultValue: () => 7 * 24 * 3_600_000,
    defaultText: "168h",
    parse: duration(0, 365 * 24 * 3_600_000),
  }),
  field({
    key: "maxPackageBytes",
    flag: "max-package-size",
    valueName: "size",
    description: "largest migration package sent or accepted (e.g. 256MiB)",
    defaultValue: () => 256 * 1024 ** 2,
    defaultText: "256MiB",
    parse: (raw) => {
      const bytes = parseSizeBytes(asString(raw));
      if (bytes === null) throw new Error("must be a size such as 64MiB");
      if (bytes < 64 * 1024 || bytes > 4 * 1024 ** 3) throw new Error("must be between 64KiB and 4GiB");
      return bytes;
    },
  }),
  field({
    key: "peerRefreshMs",
    flag: "peer-refresh",
    valueName: "duration",
    description: "how often known peers are pinged and asked for price and capabilities (0 disables)",
    defaultValue: () => 30_000,
    defaultText: "30s",
    parse: duration(0, 24 * 3_600_000),
  }),
] as const satisfies readonly FieldSpec<keyof NodeConfig>[];

/** Flags that may be given without a value, meaning true (`--mdns`, or `--mdns false`). */
export const SWITCH_FLAGS: readonly string[] = ["mdns"];
/** Flags that may be given more than once (values are collected). */
export const REPEATABLE_FLAGS: readonly string[] = ["listen", "bootstrap", "trusted-peer"];

export function envName(flag: string): string {
  return `IGORD_${flag.toUpperCase().replaceAll("-", "_")}`;
}
