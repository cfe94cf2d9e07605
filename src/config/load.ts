// Merges flags > IGORD_* env vars > config file > defaults into one validated NodeConfig.
import { readFileSync } from "node:fs";
import { ErrorCode, IgordError } from "../errors.js";
import { envName, FIELDS, type FieldSpec, type NodeConfig, type RawValue } from "./schema.js";

export const CONFIG_FLAG = "config";

export interface ConfigSources {
  /** Flag values by flag name (kebab-case), only those given on the command line. */
  flags?: Readonly<Record<string, string | undefined>>;
  env?: Readonly<Record<string, string | undefined>>;
  /** Explicit config file path; otherwise flags.config, then IGORD_CONFIG. */
  configFile?: string;
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

export function loadConfig(sources: ConfigSources = {}): NodeConfig {
  const flags = sources.flags ?? {};
  const env = sources.env ?? {};
  const filePath = sources.configFile ?? flags[CONFIG_FLAG] ?? env[envName(CONFIG_FLAG)];
  const file = filePath ? readConfigFile(filePath) : {};
  const out: Record<string, unknown> = {};
  const explicit = new Set<string>();
  for (const spec of FIELDS as readonly FieldSpec[]) {
    const flagValue = flags[spec.flag];
    const envValue = env[envName(spec.flag)];
    if (flagValue !== undefined) out[spec.key] = parseField(spec, flagValue, `--${spec.flag}`);
    else if (envValue !== undefined && envValue !== "")
      out[spec.key] = parseField(spec, envValue, envName(spec.flag));
    else if (spec.flag in file)
      out[spec.key] = parseField(spec, file[spec.flag], `config key "${spec.flag}"`);
    else {
      out[spec.key] = spec.defaultValue();
      continue;
    }
    explicit.add(spec.flag);
  }
  return validateCombination(out as unknown as NodeConfig, explicit);
}

function validateCombination(cfg: NodeConfig, explicit: ReadonlySet<string>): NodeConfig {
  if (cfg.fastTickIntervalMs > cfg.tickIntervalMs) {
    // An unset fast interval follows a short tick interval down; only an explicit conflict is an error.
    if (!explicit.has("fast-tick-interval")) return { ...cfg, fastTickIntervalMs: cfg.tickIntervalMs };
    throw new IgordError(
      ErrorCode.ConfigInvalid,
      `--fast-tick-interval (${cfg.fastTickIntervalMs}ms) must not be longer than --tick-interval (${cfg.tickIntervalMs}ms)`,
      { details: { field: "fast-tick-interval" } },
    );
  }
  return cfg;
}
