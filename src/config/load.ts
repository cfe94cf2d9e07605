// Merges flags > IGORD_* env vars > config file > defaults into one validated NodeConfig.
import { readFileSync } from "node:fs";
import { ErrorCode, IgordError } from "../errors.js";
import { selfVerifies } from "../replay/policy.js";
import { envName, FIELDS, type FieldSpec, type NodeConfig, type RawValue } from "./schema.js";

export const CONFIG_FLAG = "config";

export interface ConfigSources {
  /** Flag values by flag name (kebab-case), only those given on the command line. */
  flags?: Readonly<Record<string, string | undefined>>;
  env?: Readonly<Record<string, string | undefined>>;
  /** Explicit config file path; otherwise flags.config, then IGORD_CONFIG. */
  configFile?: string;
}

/**
 * The first key the top-level object of valid JSON `text` gives twice, or null (JSON.parse keeps the
 * last one of each). Only the top level: keys inside a value are that value's.
 */
function repeatedTopLevelKey(text: string): string | null {
  const seen = new Set<string>();
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      if (depth === 1 && expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (seen.has(key)) return key;
        seen.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === "{" || c === "[") {
      depth++;
      expectKey = depth === 1;
    } else if (c === "}" || c === "]") {
      depth--;
    } else if (c === "," && depth === 1) {
      expectKey = true;
    }
  }
  return null;
}

function readConfigFile(path: string): Record<string, RawValue> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new IgordError(
      ErrorCode.ConfigInvalid,
      `cannot read config file ${path}: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new IgordError(
      ErrorCode.ConfigInvalid,
      `config file ${path} is not valid JSON: ${(e as Error).message}`,
    );
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new IgordError(ErrorCode.ConfigInvalid, `config file ${path} must hold a JSON object`);
  }
  const twice = repeatedTopLevelKey(text);
  if (twice !== null) throw new IgordError(ErrorCode.ConfigInvalid, `config file ${path} gives "${twice}" twice (JSON keeps the last one silently): give each key once`, { details: { field: twice } });
  const known = new Set<string>(FIELDS.map((f) => f.flag));
  for (const key of Object.keys(parsed)) {
    if (!known.has(key)) {
      throw new IgordError(
        ErrorCode.ConfigInvalid,
        `config file ${path}: unknown key "${key}" (known keys: ${[...known].join(", ")})`,
        { details: { field: key } },
      );
    }
  }
  return parsed as Record<string, RawValue>;
}

function parseField(spec: FieldSpec, raw: RawValue, origin: string): unknown {
  try {
    return spec.parse(raw);
  } catch (e) {
    throw new IgordError(
      ErrorCode.ConfigInvalid,
      `invalid ${origin} ${JSON.stringify(raw)}: ${(e as Error).message}`,
      {
        details: { field: spec.flag, origin },
      },
    );
  }
}

/** Where a value came from, as combination errors name it: flag, env var name, config file, or default. */
export interface ValueSource {
  origin: string;
  /** The value as the user wrote it (or the documented default). */
  text: string;
}

function rawText(raw: RawValue): string {
  return Array.isArray(raw) ? raw.map(String).join(",") : typeof raw === "string" ? raw : JSON.stringify(raw);
}

/** IGORD_* variables igord reads that are not settings (test and diagnostic switches). */
const OTHER_IGORD_VARS: readonly string[] = ["IGORD_CRASH_AT", "IGORD_ED25519"];

/** The candidate within edit distance 3 of `name` (the nearest), if any: a typo's likely intent. */
function nearestName(name: string, candidates: readonly string[]): string | undefined {
  let best: { c: string; d: number } | undefined;
  for (const c of candidates) {
    const d = editDistance(name, c);
    if (d <= 3 && (!best || d < best.d)) best = { c, d };
  }
  return best?.c;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length] as number;
}

/**
 * IGORD_* variables in `env` that are no setting (nor one of igord's other switches), each with the
 * setting's variable it is nearest to: a misspelt one is otherwise silently without effect. The
 * daemon warns about them at start (another tool's IGORD_* variables are not an error).
 */
export function unknownSettingVars(env: Readonly<Record<string, string | undefined>>): { name: string; nearest?: string }[] {
  const known = [...FIELDS.map((f) => envName(f.flag)), envName(CONFIG_FLAG)];
  return Object.keys(env)
    .filter((k) => k.startsWith("IGORD_") && !known.includes(k) && !OTHER_IGORD_VARS.includes(k))
    .map((name) => {
      const nearest = nearestName(name, known);
      return nearest ? { name, nearest } : { name };
    });
}

export function loadConfig(sources: ConfigSources = {}): NodeConfig {
  const flags = sources.flags ?? {};
  const env = sources.env ?? {};
  // The command line's parser refuses unknown options; flags given programmatically (the test
  // kit's) are checked here, so a misspelt one is an error and not silently a default.
  const flagNames = [...FIELDS.map((f) => f.flag), CONFIG_FLAG];
  for (const key of Object.keys(flags)) {
    if (!flagNames.includes(key)) {
      const nearest = nearestName(key, flagNames);
      throw new IgordError(ErrorCode.ConfigInvalid, `unknown setting --${key}${nearest ? ` (did you mean --${nearest}?)` : ""}`, { details: { field: key } });
    }
  }
  const filePath = sources.configFile ?? flags[CONFIG_FLAG] ?? env[envName(CONFIG_FLAG)];
  const file = filePath ? readConfigFile(filePath) : {};
  const out: Record<string, unknown> = {};
  const from = new Map<string, ValueSource>();
  for (const spec of FIELDS as readonly FieldSpec[]) {
    const flagValue = flags[spec.flag];
    const envValue = env[envName(spec.flag)];
    if (flagValue !== undefined) {
      out[spec.key] = parseField(spec, flagValue, `--${spec.flag}`);
      from.set(spec.flag, { origin: "flag", text: flagValue });
    } else if (envValue !== undefined && envValue !== "") {
      out[spec.key] = parseField(spec, envValue, envName(spec.flag));
      from.set(spec.flag, { origin: envName(spec.flag), text: envValue });
    } else if (spec.flag in file) {
      out[spec.key] = parseField(spec, file[spec.flag], `config key "${spec.flag}"`);
      from.set(spec.flag, { origin: `config file ${filePath}`, text: rawText(file[spec.flag]) });
    } else {
      out[spec.key] = spec.defaultValue();
    }
  }
  return validateCombination(out as unknown as NodeConfig, (flag) => from.get(flag));
}

/** Settings that are each valid alone but contradict each other; errors name both values and their sources. */
function validateCombination(cfg: NodeConfig, given: (flag: string) => ValueSource | undefined): NodeConfig {
  const named = (flag: string): string => {
    const s = given(flag) ?? { origin: "default", text: FIELDS.find((f) => f.flag === flag)?.defaultText ?? "" };
    return `--${flag} ${s.text} (${s.origin})`;
  };
  const refuse = (field: string, message: string): never => {
    throw new IgordError(ErrorCode.ConfigInvalid, message, { details: { field } });
  };
  if (cfg.fastTickIntervalMs > cfg.tickIntervalMs) {
    // An unset fast interval follows a short tick interval down; only an explicit conflict is an error.
    if (!given("fast-tick-interval")) cfg = { ...cfg, fastTickIntervalMs: cfg.tickIntervalMs };
    else refuse("fast-tick-interval", `${named("fast-tick-interval")} must not be longer than ${named("tick-interval")}`);
  }
  if (cfg.leaseDurationMs > 0 && cfg.leaseDurationMs < cfg.tickIntervalMs) {
    refuse(
      "lease-duration",
      `${named("lease-duration")} is shorter than ${named("tick-interval")}: the lease would lapse between two ticks; give a longer lease (or 0 to disable leases) or a shorter tick interval`,
    );
  }
  if (cfg.replayWindow === 0 && selfVerifies(cfg.replayMode)) {
    refuse(
      "replay-window",
      `${named("replay-window")} keeps no ticks to verify, but ${named("replay-mode")} verifies the agent's own ticks; give a window of at least 1 or --replay-mode off|on-migrate`,
    );
  }
  if (cfg.verifyInterval > cfg.replayWindow && selfVerifies(cfg.replayMode)) {
    // The window lets ticks go once it holds --replay-window of them: those would never be verified.
    refuse(
      "verify-interval",
      `${named("verify-interval")} is longer than ${named("replay-window")}: the window lets ticks go before a verification reaches them; give a window at least as long as the interval, or a shorter interval`,
    );
  }
  if (cfg.bootstrap.length > 0 && cfg.listen.length === 0) {
    refuse(
      "bootstrap",
      `${named("bootstrap")} needs the p2p service, but ${named("listen")} turns it off; give a --listen address or drop --bootstrap`,
    );
  }
  return cfg;
}
