import { describe, expect, it } from "vitest";
import { isIgordError } from "../../../src/errors.js";
import { MAX_AGENT_MEMORY_BYTES, MAX_AGENT_TICK_INTERVAL_MS, MIN_AGENT_TICK_INTERVAL_MS, memoryCapPages, parseManifest } from "../../../src/manifest/manifest.js";

function refusal(text: string): Error {
  try {
    parseManifest(text, "test.manifest.json");
  } catch (e) {
    expect(isIgordError(e, "MANIFEST_INVALID")).toBe(true);
    return e as Error;
  }
  throw new Error("expected the manifest to be refused");
}

describe("capability manifest", () => {
  it("parses capabilities, limits and migration policy", () => {
    const m = parseManifest(
      JSON.stringify({
        capabilities: { clock: { version: 1 }, log: { version: 2, options: { level: "info" } } },
        resource_limits: { max_memory_bytes: 1048576 },
        migration_policy: { enabled: true, max_price_per_second: 5000 },
      }),
    );
    expect([...m.capabilities.keys()]).toEqual(["clock", "log"]);
    expect(m.capabilities.get("log")?.version).toBe(2);
    expect(memoryCapPages(m)).toBe(16);
    expect(m.migrationPolicy).toEqual({ enabled: true, maxPricePerSecond: 5000n, preferredRegions: [] });
  });

  it("an empty or absent manifest grants nothing and allows 64 MiB", () => {
    const m = parseManifest("");
    expect(m.capabilities.size).toBe(0);
    expect(m.resourceLimits.maxMemoryBytes).toBe(MAX_AGENT_MEMORY_BYTES);
  });

  it("a migration policy without 'enabled' keeps migration enabled (igor silently disabled it)", () => {
    expect(parseManifest('{"migration_policy": {"max_price_per_second": 10}}').migrationPolicy.enabled).toBe(
      true,
    );
  });

  it("accepts exactly 64 MiB", () => {
    expect(memoryCapPages(parseManifest('{"resource_limits": {"max_memory_bytes": 67108864}}'))).toBe(1024);
  });

  it.each([
    ["{not json", /not valid JSON/],
    ["[]", /must be a JSON object/],
    ['{"capabilities": {"clock": {"version": 0}}}', /capability "clock" version must be an integer >= 1/],
    ['{"capabilities": {"clock": {}}}', /capability "clock" version/],
    ['{"capabilities": {"clock": true}}', /capability "clock" must be an object/],
    ['{"resource_limits": {"max_memory_bytes": 67108865}}', /above the maximum 67108864/],
    ['{"resource_limits": {"max_memory_bytes": 100}}', /below one WebAssembly page/],
    ['{"resource_limits": {"max_memory_bytes": "big"}}', /max_memory_bytes must be a non-negative integer/],
    ['{"migration_policy": {"enabled": "yes"}}', /enabled must be true or false/],
  ])("refuses %s with a message naming the problem", (text, message) => {
    const e = refusal(text);
    expect(e.message).toMatch(message);
    expect(e.message).toMatch(/test\.manifest\.json/);
  });
});

describe("tick_interval_ms", () => {
  it("is the agent's own cadence in ms; absent means the node's --tick-interval", () => {
    expect(parseManifest(JSON.stringify({ tick_interval_ms: 60_000 })).tickIntervalMs).toBe(60_000);
    expect(parseManifest(JSON.stringify({ tick_interval_ms: "250" })).tickIntervalMs).toBe(250);
    expect(parseManifest(JSON.stringify({ tick_interval_ms: MIN_AGENT_TICK_INTERVAL_MS })).tickIntervalMs).toBe(MIN_AGENT_TICK_INTERVAL_MS);
    expect(parseManifest("{}").tickIntervalMs).toBeNull();
  });

  it.each([
    [JSON.stringify({ tick_interval_ms: MIN_AGENT_TICK_INTERVAL_MS - 1 }), /tick_interval_ms 9 is below the minimum of 10 ms/],
    [JSON.stringify({ tick_interval_ms: 0 }), /tick_interval_ms 0 is below the minimum/],
    [JSON.stringify({ tick_interval_ms: MAX_AGENT_TICK_INTERVAL_MS + 1 }), /above the maximum of 86400000 ms/],
    [JSON.stringify({ tick_interval_ms: 1.5 }), /tick_interval_ms must be an integer number of milliseconds, got 1\.5/],
    [JSON.stringify({ tick_interval_ms: "1s" }), /tick_interval_ms must be an integer number of milliseconds, got "1s"/],
    [JSON.stringify({ tick_interval_ms: -5 }), /below the minimum/],
  ])("refuses %s with a message naming the field and its bound", (text, message) => {
    const e = refusal(text);
    expect(e.message).toMatch(message);
    expect(e.message).toMatch(/test\.manifest\.json/);
  });
});
