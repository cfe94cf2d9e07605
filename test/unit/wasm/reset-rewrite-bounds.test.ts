// The rewrite that lets replay reset a pooled instance (wasm/reset-exports.ts) runs on the main
// thread at every load, a migration's admission included: its cost must be what copying the module
// costs, and a module it cannot rewrite within WebAssembly's limits must load as it is (its replay
// instances fresh), never fail with an engine error.
import { describe, expect, it } from "vitest";
import { isIgordError } from "../../../src/errors.js";
import { ModuleCache, prepareFromBytes } from "../../../src/loader/prepare.js";
import { parseManifest } from "../../../src/manifest/manifest.js";
import { concatBytes, leb } from "../../../src/wasm/module-info.js";
import { MAX_RESET_GLOBALS, RESET_SECTION, withResetExports } from "../../../src/wasm/reset-exports.js";
import { CAPS, wat2wasm, watAgent } from "../../helpers/wat.js";

const sec = (id: number, body: Uint8Array): Uint8Array => concatBytes([Uint8Array.from([id, ...leb(body.length)]), body]);
const name = (s: string): number[] => [...leb(s.length), ...new TextEncoder().encode(s)];

/** An ABI-complete agent (its state: 4 bytes at 0) and `pads` more functions of 4 MiB of nops each. */
function agentWithCode(pads: number): Uint8Array<ArrayBuffer> {
  const padBytes = 4 * 1024 * 1024;
  // types: 0 () -> (), 1 () -> i32, 2 (i32, i32) -> (), 3 (i32) -> i32
  const types = sec(1, Uint8Array.from([4, 0x60, 0, 0, 0x60, 0, 1, 0x7f, 0x60, 2, 0x7f, 0x7f, 0, 0x60, 1, 0x7f, 1, 0x7f]));
  const funcs = sec(3, Uint8Array.from([6 + pads, 0, 1, 1, 1, 2, 3, ...Array<number>(pads).fill(0)]));
  const mem = sec(5, Uint8Array.from([1, 0, 1]));
  // A mutable global, so the rewrite has state to save.
  const globals = sec(6, Uint8Array.from([1, 0x7f, 1, 0x41, 0, 0x0b]));
  const exps = [
    [...name("memory"), 2, 0],
    [...name("agent_init"), 0, 0],
    [...name("agent_tick"), 0, 1],
    [...name("agent_checkpoint"), 0, 2],
    [...name("agent_checkpoint_ptr"), 0, 3],
    [...name("agent_resume"), 0, 4],
    [...name("malloc"), 0, 5],
  ];
  const exp = sec(7, Uint8Array.from([exps.length, ...exps.flat()]));
  const body = (code: number[]): Uint8Array => Uint8Array.from([...leb(code.length + 1), 0, ...code]);
  const pad = new Uint8Array(padBytes + 2);
  pad.fill(0x01, 1, padBytes + 1);
  pad[padBytes + 1] = 0x0b;
  const code = sec(
    10,
    concatBytes([
      Uint8Array.from([6 + pads]),
      body([0x0b]),
      // tick: mem[0] += 1; return 0
      body([0x41, 0, 0x41, 0, 0x28, 2, 0, 0x41, 1, 0x6a, 0x36, 2, 0, 0x41, 0, 0x0b]),
      body([0x41, 4, 0x0b]),
      body([0x41, 0, 0x0b]),
      // resume(p, n): mem[0] = mem[p]
      body([0x41, 0, 0x20, 0, 0x28, 2, 0, 0x36, 2, 0, 0x0b]),
      body([0x41, 0x80, 0x08, 0x0b]),
      ...Array.from({ length: pads }, () => [Uint8Array.from(leb(pad.length)), pad]).flat(),
    ]),
  );
  return concatBytes([Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]), types, funcs, mem, globals, exp, code]);
}

const prepare = (bytes: Uint8Array<ArrayBuffer>) =>
  prepareFromBytes({ agentId: "a", bytes, manifest: parseManifest(JSON.stringify(CAPS()), "m"), source: "test", offered: new Set(), cache: new ModuleCache() });

const isMarked = (m: WebAssembly.Module): boolean => WebAssembly.Module.customSections(m, RESET_SECTION).length > 0;

describe("the replay reset's rewrite at load", () => {
  it("rewrites a module with 8 MiB of code in tens of milliseconds, not seconds (it held the main thread 2.4 s)", () => {
    const bytes = agentWithCode(2);
    const t = performance.now();
    const out = withResetExports(bytes, "k");
    const ms = performance.now() - t;
    expect(out).not.toBeNull();
    expect(WebAssembly.validate(out as Uint8Array<ArrayBuffer>)).toBe(true);
    // Copying 8 MiB takes a few ms; the arrays of numbers it went through took 2,390 ms here.
    expect(ms).toBeLessThan(500);
    expect(isMarked(prepare(bytes).module)).toBe(true);
  }, 60_000);

  it("a module whose rewrite would pass WebAssembly's limits (99,999 exports, +2) loads as it is, its replay instances fresh", async () => {
    // watAgent exports 7 names; these make 99,999, the limit being 100,000.
    const extra = Array.from({ length: 99_992 }, (_, i) => `(export "e${i}" (func 0))`).join(" ");
    const bytes = await wat2wasm(watAgent({ extra }));
    expect(WebAssembly.validate(bytes)).toBe(true);
    let prepared: ReturnType<typeof prepare> | undefined;
    try {
      prepared = prepare(bytes);
    } catch (e) {
      // It was a bare CompileError ("exports count of 100001 exceeds internal limit"), classified INTERNAL.
      expect.fail(`refused: ${isIgordError(e) ? e.code : (e as Error).constructor.name} ${(e as Error).message}`);
    }
    expect(isMarked((prepared as ReturnType<typeof prepare>).module)).toBe(false);
  }, 120_000);

  it(`a module with more than MAX_RESET_GLOBALS (${MAX_RESET_GLOBALS}) mutable globals is not rewritten: its instances are always fresh`, async () => {
    const many = (n: number): string => Array.from({ length: n }, () => "(global (mut i32) (i32.const 0))").join(" ");
    // watAgent defines one mutable global ($ticks).
    expect(withResetExports(await wat2wasm(watAgent({ extra: many(MAX_RESET_GLOBALS - 1) })), "k")).not.toBeNull();
    expect(withResetExports(await wat2wasm(watAgent({ extra: many(MAX_RESET_GLOBALS) })), "k")).toBeNull();
  }, 60_000);
});
