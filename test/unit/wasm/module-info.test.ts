import { describe, expect, it } from "vitest";
import { readModuleInfo, withMemoryMaximum } from "../../../src/wasm/module-info.js";
import { wat2wasm, watAgent } from "../../helpers/wat.js";

describe("wasm module inspection", () => {
  it("reads imports and exports with their signatures", async () => {
    const bytes = await wat2wasm(watAgent({ imports: '(import "igor" "clock_now" (func (result i64)))' }));
    const info = readModuleInfo(bytes);
    expect(info.imports).toEqual([
      { module: "igor", name: "clock_now", kind: "function", type: { params: [], results: ["i64"] } },
    ]);
    const tick = info.exports.find((e) => e.name === "agent_tick");
    expect(tick).toEqual({ name: "agent_tick", kind: "function", type: { params: [], results: ["i32"] } });
    expect(info.exports.find((e) => e.name === "agent_resume")?.type).toEqual({
      params: ["i32", "i32"],
      results: [],
    });
    expect(info.definedMemory).toEqual({
      initialPages: 1,
      maximumPages: null,
      shared: false,
      memory64: false,
    });
  });

  it("caps a module's memory maximum by rewriting its memory section", async () => {
    const bytes = await wat2wasm(watAgent({ memory: '(memory (export "memory") 2)' }));
    const capped = withMemoryMaximum(bytes, 16);
    expect(WebAssembly.validate(capped)).toBe(true);
    expect(readModuleInfo(capped).definedMemory).toMatchObject({ initialPages: 2, maximumPages: 16 });
    const mem = new WebAssembly.Instance(new WebAssembly.Module(capped)).exports.memory as WebAssembly.Memory;
    expect(mem.grow(14)).toBe(2);
    expect(() => mem.grow(1)).toThrow(RangeError);
  });

  it("reads an imported memory's limits", async () => {
    const bytes = await wat2wasm(watAgent({ memory: '(import "env" "memory" (memory 3))' }));
    const info = readModuleInfo(bytes);
    expect(info.definedMemory).toBeNull();
    expect(info.imports[0]).toMatchObject({
      module: "env",
      name: "memory",
      kind: "memory",
      memory: { initialPages: 3 },
    });
  });
});
