import { describe, expect, it } from "vitest";
import { MODULE_CACHE_BYTES, MODULE_CACHE_SIZE, ModuleCache } from "../../../src/loader/prepare.js";

// The smallest valid module: magic and version.
const EMPTY = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]);

/** A compile function and how many times it ran. */
function counting(): { compile: () => WebAssembly.Module; compiled: () => number } {
  let n = 0;
  return {
    compile: () => {
      n++;
      return new WebAssembly.Module(EMPTY);
    },
    compiled: () => n,
  };
}

describe("module cache", () => {
  it("keeps at most MODULE_CACHE_SIZE modules, dropping the oldest: a node that saw many modules does not keep them all", () => {
    const cache = new ModuleCache();
    const { compile, compiled } = counting();
    for (let i = 0; i < MODULE_CACHE_SIZE + 10; i++) cache.get(`m${i}`, EMPTY.byteLength, compile);
    expect(cache.size).toBe(MODULE_CACHE_SIZE);
    expect(compiled()).toBe(MODULE_CACHE_SIZE + 10);
    // The newest is still kept; the oldest is compiled again.
    cache.get(`m${MODULE_CACHE_SIZE + 9}`, EMPTY.byteLength, compile);
    expect(compiled()).toBe(MODULE_CACHE_SIZE + 10);
    cache.get("m0", EMPTY.byteLength, compile);
    expect(compiled()).toBe(MODULE_CACHE_SIZE + 11);
  });

  it("keeps at most MODULE_CACHE_BYTES of modules, the least recently used dropped first; the newest stays even alone above the bound", () => {
    const cache = new ModuleCache();
    const { compile, compiled } = counting();
    const quarter = MODULE_CACHE_BYTES / 4;
    for (const key of ["a", "b", "c", "d"]) cache.get(key, quarter, compile);
    expect(cache.bytes).toBe(MODULE_CACHE_BYTES);
    cache.get("a", quarter, compile); // used again: "b" is now the least recently used
    cache.get("e", quarter, compile);
    expect([cache.size, cache.bytes, compiled()]).toEqual([4, MODULE_CACHE_BYTES, 5]);
    cache.get("a", quarter, compile);
    expect(compiled()).toBe(5);
    cache.get("b", quarter, compile);
    expect(compiled()).toBe(6);
    cache.get("huge", MODULE_CACHE_BYTES + 1, compile);
    expect([cache.size, cache.bytes]).toEqual([1, MODULE_CACHE_BYTES + 1]);
  });
});
