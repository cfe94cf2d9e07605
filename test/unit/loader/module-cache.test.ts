import { describe, expect, it } from "vitest";
import { MODULE_CACHE_SIZE, ModuleCache } from "../../../src/loader/prepare.js";

// The smallest valid module: magic and version.
const EMPTY = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]);

describe("module cache", () => {
  it("keeps at most MODULE_CACHE_SIZE modules, dropping the oldest: a node that saw many modules does not keep them all", () => {
    const cache = new ModuleCache();
    let compiled = 0;
    const compile = (): WebAssembly.Module => {
      compiled++;
      return new WebAssembly.Module(EMPTY);
    };
    for (let i = 0; i < MODULE_CACHE_SIZE + 10; i++) cache.get(`m${i}`, compile);
    expect(cache.size).toBe(MODULE_CACHE_SIZE);
    expect(compiled).toBe(MODULE_CACHE_SIZE + 10);
    // The newest is still kept; the oldest is compiled again.
    cache.get(`m${MODULE_CACHE_SIZE + 9}`, compile);
    expect(compiled).toBe(MODULE_CACHE_SIZE + 10);
    cache.get("m0", compile);
    expect(compiled).toBe(MODULE_CACHE_SIZE + 11);
  });
});
