// Finding a running daemon's control API from a client command. The daemon writes the address it
// actually bound next to its token (`<data-dir>/control.addr`, 0600), so `--control 127.0.0.1:0` or
// any other address is found without repeating it. Clients resolve, first match wins:
//   --control  >  IGORD_CONTROL  >  <data-dir>/control.addr
// and the data dir: --data-dir > IGORD_DATA_DIR > ./data. Errors say where each came from. Without
// any of the three no daemon serves that data dir, and the token goes nowhere: a guessed default
// address (127.0.0.1:7420) may be any local user's listener while the daemon is down, and the token
// outlives restarts.
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type HostPort, parseHostPort } from "../config/units.js";
import { ErrorCode, IgordError, isIgordError } from "../errors.js";

export const ADDRESS_FILE = "control.addr";
export const DEFAULT_DATA_DIR = "./data";

export function addressPath(dataDir: string): string {
  return join(dataDir, ADDRESS_FILE);
}

function formatAddress(a: HostPort): string {
  return a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** Records the bound control address for clients (written whole: a reader never sees half of it). */
export function writeControlAddress(dataDir: string, addr: HostPort): void {
  const tmp = `${addressPath(dataDir)}.${process.pid}.tmp`;
  writeFileSync(tmp, `${formatAddress(addr)}\n`, { mode: 0o600 });
  renameSync(tmp, addressPath(dataDir));
}

/** Removes the address file if it still names `addr` (another daemon may have written it since). */
export function removeControlAddress(dataDir: string, addr: HostPort | null): void {
  try {
    const text = readFileSync(addressPath(dataDir), "utf8").trim();
    if (addr === null || text === formatAddress(addr)) rmSync(addressPath(dataDir), { force: true });
  } catch {
    // Nothing to remove.
  }
}

export interface LocatedControl {
  control: HostPort;
  dataDir: string;
  /** Where the address came from, in words (`--control`, `IGORD_CONTROL`, the address file, the default). */
  via: string;
  dataDirVia: string;
}

export interface LocateInput {
  /** --control as given on the command line (undefined when not given). */
  control?: string | undefined;
  /** --data-dir as given on the command line (undefined when not given). */
  dataDir?: string | undefined;
}

function parseGiven(text: string, from: string): HostPort {
  if (text === "off") throw new IgordError(ErrorCode.ControlUnavailable, `${from} is "off": that daemon serves no control API`);
  try {
    return parseHostPort(text);
  } catch (e) {
    throw new IgordError(ErrorCode.ConfigInvalid, `invalid ${from}: ${(e as Error).message}`);
  }
}

/**
 * The data dir a command uses, as the daemon's config finds it: --data-dir, else IGORD_DATA_DIR (an
 * empty one is unset), else ./data; `via` says which, for errors. Every command resolves it here,
 * those that open the database themselves too: one that read only its flag wrote into a new ./data.
 */
export function resolveDataDir(given: string | undefined, env: NodeJS.ProcessEnv): { dataDir: string; via: string } {
  if (given !== undefined) return { dataDir: given, via: `--data-dir ${given}` };
  if (env.IGORD_DATA_DIR) return { dataDir: env.IGORD_DATA_DIR, via: `IGORD_DATA_DIR=${env.IGORD_DATA_DIR}` };
  return { dataDir: DEFAULT_DATA_DIR, via: `the default data dir ${DEFAULT_DATA_DIR}` };
}

/** Resolves where the daemon's control API is (never contacts it). */
export function locateControl(input: LocateInput, env: NodeJS.ProcessEnv): LocatedControl {
  const { dataDir, via: dataDirVia } = resolveDataDir(input.dataDir, env);
  if (input.control !== undefined) return { control: parseGiven(input.control, `--control ${input.control}`), dataDir, via: `--control ${input.control}`, dataDirVia };
  if (env.IGORD_CONTROL) return { control: parseGiven(env.IGORD_CONTROL, `IGORD_CONTROL=${env.IGORD_CONTROL}`), dataDir, via: `IGORD_CONTROL=${env.IGORD_CONTROL}`, dataDirVia };
  const file = addressPath(dataDir);
  let recorded: string | null = null;
  try {
    recorded = readFileSync(file, "utf8").trim();
  } catch {
    // No daemon wrote one (or it stopped).
  }
  if (recorded) return { control: parseGiven(recorded, file), dataDir, via: `${file} (written by the daemon)`, dataDirVia };
  throw new IgordError(
    ErrorCode.ControlUnavailable,
    `no daemon serves a control API for this data dir: no --control, no IGORD_CONTROL, no ${file} (the daemon writes it when it listens and removes it when it stops) (data dir from ${dataDirVia})`,
  );
}

/** Adds to a "cannot reach the daemon" error where its address and data dir came from. */
export function explainLocation(e: unknown, loc: LocatedControl): unknown {
  if (!isIgordError(e, ErrorCode.ControlUnavailable)) return e;
  return new IgordError(ErrorCode.ControlUnavailable, `${e.message} (control address from ${loc.via}; data dir from ${loc.dataDirVia})`);
}
