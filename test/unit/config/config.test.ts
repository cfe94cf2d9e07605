import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig, unknownSettingVars } from "../../../src/config/load.js";
import { isIgordError } from "../../../src/errors.js";

function configFile(content: unknown): string {
  const p = join(mkdtempSync(join(tmpdir(), "igord-cfg-")), "igord.json");
  writeFileSync(p, typeof content === "string" ? content : JSON.stringify(content));
  return p;
}

function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected an error");
}

describe("configuration", () => {
  it("refuses a setting it does not know, given as a flag (the test kit's flags too), naming it and the nearest one", () => {
    let err: unknown;
    try {
      loadConfig({ flags: { "tick-intervall": "5s" } });
    } catch (e) {
      err = e;
    }
    expect(isIgordError(err) && err.code === "CONFIG_INVALID").toBe(true);
    expect((err as Error).message).toMatch(/unknown setting --tick-intervall \(did you mean --tick-interval\?\)/);
  });

  it("lists IGORD_* variables that are no setting (the daemon warns about them at start), not its own others", () => {
    expect(unknownSettingVars({ IGORD_TICK_INTERVALL: "5s", IGORD_TICK_INTERVAL: "1s", IGORD_CRASH_AT: "x", IGORD_ED25519: "openssl", IGORD_CONFIG: "f", HOME: "/root" })).toEqual([
      { name: "IGORD_TICK_INTERVALL", nearest: "IGORD_TICK_INTERVAL" },
    ]);
  });

  it("has the documented defaults", () => {
    const c = loadConfig();
    expect(c.agentsDir).toBe("./agents");
    expect(c.dataDir).toBe("./data");
    expect(c.price).toBe(1000n);
    expect(c.budget).toBe(1_000_000n);
    expect(c.capabilities).toEqual(["clock", "emit", "http", "log", "pricing", "rand", "wallet", "x402"]);
    expect(c.tickIntervalMs).toBe(1000);
    expect(c.fastTickIntervalMs).toBe(10);
    expect(c.tickTimeoutMs).toBe(15_000);
    expect(c.control).toEqual({ host: "127.0.0.1", port: 7420 });
    expect(c.logLevel).toBe("info");
    // Storage per agent is bounded unless the operator asks for every checkpoint (0).
    expect(c.historyRetention).toBe(4096);
    expect(loadConfig({ flags: { "history-retention": "0" } }).historyRetention).toBe(0);
  });

  it("takes flags over env vars over the config file", () => {
    const file = configFile({ price: "0.5", budget: "7", "tick-interval": "3s", "log-level": "warn" });
    const c = loadConfig({
      flags: { config: file, price: "0.25" },
      env: { IGORD_PRICE: "0.75", IGORD_BUDGET: "2.5" },
    });
    expect(c.price).toBe(250_000n); // flag
    expect(c.budget).toBe(2_500_000n); // env beats file
    expect(c.tickIntervalMs).toBe(3000); // file
    expect(c.logLevel).toBe("warn");
  });

  it("refuses a config file that gives a key twice, naming it (the last one silently won)", () => {
    const file = configFile('{"tick-interval": "1s", "log-level": "warn", "tick-interval": "10ms"}');
    const err = errorOf(() => loadConfig({ configFile: file }));
    expect(isIgordError(err) ? err.code : err).toBe("CONFIG_INVALID");
    expect(err.message).toContain('gives "tick-interval" twice');
    // Keys inside a value are not the file's keys.
    expect(loadConfig({ configFile: configFile('{"capabilities": ["clock", "log"], "control": "off"}') }).control).toBeNull();
  });

  it("refuses a duration without its unit in the config file, as on the command line (a bare 2 was 2 ms), 0 aside", () => {
    const err = errorOf(() => loadConfig({ configFile: configFile({ "tick-interval": 2 }) }));
    expect(isIgordError(err) ? err.code : err).toBe("CONFIG_INVALID");
    expect(err.message).toContain("tick-interval");
    expect(err.message).toMatch(/unit/);
    expect(loadConfig({ configFile: configFile({ "checkpoint-interval": 0 }) }).checkpointIntervalMs).toBe(0);
    expect(loadConfig({ configFile: configFile({ "tick-interval": "2s" }) }).tickIntervalMs).toBe(2000);
  });

  it("refuses a size past what a byte count holds exactly (it took 1e35 bytes)", () => {
    for (const flag of ["outbox-retention", "event-log-max-bytes"]) {
      const err = errorOf(() => loadConfig({ flags: { [flag]: "99999999999999999999999999GiB" } }));
      expect(isIgordError(err) ? err.code : err).toBe("CONFIG_INVALID");
      expect(err.message).toContain(flag);
    }
    expect(loadConfig({ flags: { "event-log-max-bytes": "1GiB" } }).eventLogMaxBytes).toBe(2 ** 30);
  });

  it("finds the config file through IGORD_CONFIG", () => {
    const file = configFile({ control: "off", capabilities: ["clock", "log"] });
    const c = loadConfig({ env: { IGORD_CONFIG: file } });
    expect(c.control).toBeNull();
    expect(c.capabilities).toEqual(["clock", "log"]);
  });

  it.each([
    [{ price: "0" }, /--price.*greater than 0/],
    [{ budget: "abc" }, /--budget.*not a decimal/],
    // Above i64 microcents (what a checkpoint, a receipt and SQLite hold): storing it failed with no code.
    [{ budget: "9223372036854.775808" }, /--budget.*at most 9223372036854\.775807/],
    [{ price: "10000000000000" }, /--price.*at most 9223372036854\.775807/],
    [{ "max-incoming-budget": "10000000000000" }, /--max-incoming-budget.*at most 9223372036854\.775807/],
    [{ "tick-interval": "5" }, /--tick-interval.*not a duration/],
    [{ "tick-timeout": "1ms" }, /--tick-timeout.*at least 10ms/],
    [{ capabilities: "clock,teleport" }, /--capabilities.*unknown capability "teleport"/],
    [{ control: "localhost" }, /--control.*host:port/],
    [{ "log-level": "loud" }, /--log-level.*one of/],
    [{ workers: "0" }, /--workers.*between 1/],
    [{ "fast-tick-interval": "2s", "tick-interval": "1s" }, /--fast-tick-interval.*must not be longer/],
  ])("refuses %o naming the flag", (flags, message) => {
    const e = errorOf(() => loadConfig({ flags }));
    expect(isIgordError(e, "CONFIG_INVALID")).toBe(true);
    expect(e.message).toMatch(message);
  });

  it("takes the largest budget a checkpoint holds (2^63 - 1 microcents)", () => {
    expect(loadConfig({ flags: { budget: "9223372036854.775807" } }).budget).toBe(2n ** 63n - 1n);
  });

  it("refuses a lease shorter than the tick interval, naming where each value came from", () => {
    const file = configFile({ "tick-interval": "2m" });
    const e = errorOf(() =>
      loadConfig({ flags: { "lease-duration": "500ms" }, env: { IGORD_TICK_INTERVAL: "1s" } }),
    );
    expect(isIgordError(e, "CONFIG_INVALID")).toBe(true);
    expect(e.message).toContain("--lease-duration 500ms (flag) is shorter than --tick-interval 1s (IGORD_TICK_INTERVAL)");
    // A default that no longer fits is named as the default, and the file by its path.
    expect(errorOf(() => loadConfig({ configFile: file })).message).toContain(
      `--lease-duration 60s (default) is shorter than --tick-interval 2m (config file ${file})`,
    );
    // Leases off, or a lease at least one tick long, are fine.
    expect(loadConfig({ flags: { "lease-duration": "0", "tick-interval": "2m" } }).leaseDurationMs).toBe(0);
    expect(loadConfig({ flags: { "lease-duration": "1s", "tick-interval": "1s" } }).leaseDurationMs).toBe(1000);
  });

  it("refuses an empty replay window with a mode that verifies the agent's own ticks", () => {
    expect(errorOf(() => loadConfig({ flags: { "replay-window": "0" } })).message).toContain(
      "--replay-window 0 (flag) keeps no ticks to verify, but --replay-mode full (default) verifies",
    );
    expect(
      errorOf(() => loadConfig({ env: { IGORD_REPLAY_WINDOW: "0" }, flags: { "replay-mode": "periodic" } })).message,
    ).toContain("--replay-window 0 (IGORD_REPLAY_WINDOW) keeps no ticks to verify, but --replay-mode periodic (flag)");
    for (const mode of ["off", "on-migrate"]) {
      expect(loadConfig({ flags: { "replay-window": "0", "replay-mode": mode } }).replayWindow).toBe(0);
    }
  });

  it("refuses a --verify-interval longer than the --replay-window it verifies from, naming both sources", () => {
    const e = errorOf(() => loadConfig({ flags: { "verify-interval": "8", "replay-window": "4" } }));
    expect(isIgordError(e, "CONFIG_INVALID")).toBe(true);
    expect(e.message).toContain("--verify-interval 8 (flag) is longer than --replay-window 4 (flag)");
    const file = configFile({ "verify-interval": 20 });
    expect(errorOf(() => loadConfig({ configFile: file })).message).toContain(`--verify-interval 20 (config file ${file}) is longer than --replay-window 16 (default)`);
    expect(errorOf(() => loadConfig({ env: { IGORD_REPLAY_WINDOW: "3" } })).message).toContain("--verify-interval 5 (default) is longer than --replay-window 3 (IGORD_REPLAY_WINDOW)");
    // Equal is fine, so are verification off and modes that do not verify the agent's own ticks.
    expect(loadConfig({ flags: { "verify-interval": "4", "replay-window": "4" } }).verifyInterval).toBe(4);
    expect(loadConfig({ flags: { "verify-interval": "0", "replay-window": "1" } }).verifyInterval).toBe(0);
    for (const mode of ["off", "on-migrate"]) expect(loadConfig({ flags: { "verify-interval": "8", "replay-window": "4", "replay-mode": mode } }).replayWindow).toBe(4);
  });

  it("refuses --bootstrap with --listen off, naming both sources", () => {
    const peer = "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp";
    const file = configFile({ bootstrap: [peer] });
    const e = errorOf(() => loadConfig({ configFile: file, env: { IGORD_LISTEN: "off" } }));
    expect(isIgordError(e, "CONFIG_INVALID")).toBe(true);
    expect(e.message).toContain(`--bootstrap ${peer} (config file ${file}) needs the p2p service, but --listen off (IGORD_LISTEN)`);
    expect(loadConfig({ flags: { listen: "off" } }).bootstrap).toEqual([]);
  });

  it("refuses a --bootstrap address without the peer's id (/p2p/<peer-id>): a bootstrap peer is a migration candidate, its identity must be known", () => {
    const e = errorOf(() => loadConfig({ flags: { bootstrap: "/ip4/127.0.0.1/tcp/4001" } }));
    expect(isIgordError(e, "CONFIG_INVALID")).toBe(true);
    expect(e.message).toContain('"/ip4/127.0.0.1/tcp/4001" has no /p2p/<peer-id> at its end');
    expect(isIgordError(errorOf(() => loadConfig({ flags: { bootstrap: "/ip4/127.0.0.1/tcp/4001/p2p/not-a-peer-id" } })), "CONFIG_INVALID")).toBe(true);
  });

  it("names the sources of a fast interval longer than the tick interval", () => {
    expect(
      errorOf(() => loadConfig({ flags: { "fast-tick-interval": "2s" }, env: { IGORD_TICK_INTERVAL: "1s" } })).message,
    ).toContain("--fast-tick-interval 2s (flag) must not be longer than --tick-interval 1s (IGORD_TICK_INTERVAL)");
  });

  it("event-log retention takes a tick count or a size", () => {
    expect(loadConfig({ flags: { "event-log-retention": "500" } }).eventLogRetention).toEqual({ ticks: 500 });
    expect(loadConfig({ flags: { "event-log-retention": "64MiB" } }).eventLogRetention).toEqual({ bytes: 64 * 1024 * 1024 });
    expect(() => loadConfig({ flags: { "event-log-retention": "lots" } })).toThrow(/--event-log-retention/);
    expect(() => loadConfig({ flags: { "replay-window": "-1" } })).toThrow(/--replay-window "-1": must be a whole number/);
    expect(() => loadConfig({ flags: { "replay-on-divergence": "bogus" } })).toThrow(/--replay-on-divergence "bogus": must be one of log, pause, intensify, migrate/);
  });

  it("p2p and migration settings: defaults, lists, and bad values named", () => {
    const c = loadConfig();
    expect(c.listen).toEqual(["/ip4/0.0.0.0/tcp/4001"]);
    expect(c.bootstrap).toEqual([]);
    expect(c.acceptMigrations).toBe("trusted");
    expect([c.maxIncomingBudget, c.maxAgentsPerPeer]).toEqual([10_000_000n, 100]);
    expect(errorOf(() => loadConfig({ flags: { "max-incoming-budget": "0" } })).message).toMatch(/--max-incoming-budget.*greater than 0/);
    expect(errorOf(() => loadConfig({ flags: { "max-agents-per-peer": "-1" } })).message).toMatch(/--max-agents-per-peer.*whole number/);
    expect(loadConfig({ flags: {}, env: { IGORD_MAX_AGENTS_PER_PEER: "7" } }).maxAgentsPerPeer).toBe(7);
    expect([c.migrationRetries, c.migrationRetryDelayMs, c.migrationMaxDelayMs]).toEqual([3, 1000, 30_000]);
    expect(loadConfig({ flags: { listen: "off" } }).listen).toEqual([]);
    expect(loadConfig({ flags: { listen: "/ip4/127.0.0.1/tcp/1,/ip4/127.0.0.1/tcp/2" } }).listen).toHaveLength(2);
    expect(loadConfig({ flags: { "max-package-size": "8MiB" } }).maxPackageBytes).toBe(8 * 1024 * 1024);
    expect(errorOf(() => loadConfig({ flags: { listen: "127.0.0.1:4001" } })).message).toMatch(/--listen.*not a multiaddr/);
    expect(errorOf(() => loadConfig({ flags: { "trusted-peer": "bob" } })).message).toMatch(/--trusted-peer.*not a peer id/);
    expect(errorOf(() => loadConfig({ flags: { "migration-retries": "0" } })).message).toMatch(/--migration-retries.*at least 1/);
    expect(errorOf(() => loadConfig({ flags: { "accept-migrations": "some" } })).message).toMatch(/any, trusted, none/);
    expect(errorOf(() => loadConfig({ flags: { "max-package-size": "1KiB" } })).message).toMatch(/between 64KiB/);
  });

  it("an unset fast interval follows a shorter tick interval", () => {
    expect(loadConfig({ flags: { "tick-interval": "5ms" } }).fastTickIntervalMs).toBe(5);
  });

  it("names the env var and the config key that hold a bad value", () => {
    expect(errorOf(() => loadConfig({ env: { IGORD_PRICE: "-1" } })).message).toMatch(/IGORD_PRICE/);
    const file = configFile({ "tick-timeout": "forever" });
    expect(errorOf(() => loadConfig({ configFile: file })).message).toMatch(/config key "tick-timeout"/);
  });

  it("refuses unknown keys, invalid JSON and a missing config file", () => {
    expect(errorOf(() => loadConfig({ configFile: configFile({ "tick-intervall": "1s" }) })).message).toMatch(
      /unknown key "tick-intervall"/,
    );
    expect(errorOf(() => loadConfig({ configFile: configFile("{nope") })).message).toMatch(/not valid JSON/);
    expect(errorOf(() => loadConfig({ configFile: "/nonexistent/igord.json" })).message).toMatch(
      /cannot read config file/,
    );
  });
});
