// Declares the schema's fields as commander options (help shows each default) and reads back only
// the values given on the command line, so env vars and the config file can fill in the rest.
import { type Command, Option } from "commander";
import { CONFIG_FLAG } from "../config/load.js";
import { envName, FIELDS, REPEATABLE_FLAGS, SWITCH_FLAGS } from "../config/schema.js";

/**
 * `defaults` overrides the default a command shows where it differs from the daemon's (e.g. `igord
 * run` serves no control API unless asked).
 */
export function addConfigOptions(cmd: Command, skip: readonly string[] = [], defaults: Readonly<Record<string, string>> = {}): Command {
  for (const field of FIELDS) {
    if (skip.includes(field.flag)) continue;
    const f = { ...field, defaultText: defaults[field.flag] ?? field.defaultText };
    const help = `${f.description} [env ${envName(f.flag)}]`;
    if (REPEATABLE_FLAGS.includes(f.flag)) {
      // Repeated flags collect into one comma-joined value (multiaddrs and peer ids hold no commas).
      const option = new Option(`--${f.flag} <${f.valueName}>`, `${help} (default: ${f.defaultText})`);
      cmd.addOption(option.argParser((v: string, prev: unknown) => (typeof prev === "string" ? `${prev},${v}` : v)));
    } else if (SWITCH_FLAGS.includes(f.flag)) {
      cmd.addOption(new Option(`--${f.flag} [${f.valueName}]`, help).default(f.defaultText));
    } else {
      cmd.addOption(new Option(`--${f.flag} <${f.valueName}>`, help).default(f.defaultText));
    }
  }
  cmd.addOption(
    new Option(
      `--${CONFIG_FLAG} <file>`,
      `JSON config file (keys are flag names) [env ${envName(CONFIG_FLAG)}]`,
    ).default("none"),
  );
  return cmd;
}

function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** The flag values the user typed, keyed by flag name. */
export function cliFlags(cmd: Command): Record<string, string> {
  const out: Record<string, string> = {};
  const opts = cmd.opts<Record<string, string | boolean>>();
  for (const flag of [...FIELDS.map((f) => f.flag), CONFIG_FLAG]) {
    const key = camel(flag);
    const v = opts[key];
    // A switch given without a value arrives as true.
    if (cmd.getOptionValueSource(key) === "cli" && v !== undefined) out[flag] = String(v);
  }
  return out;
}
