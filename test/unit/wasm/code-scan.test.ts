// Relaxed SIMD leaves results to the CPU (fused or unfused multiply-add, out-of-range swizzle lanes,
// a NaN's min/max): a tick using it may compute otherwise in a replay or on the node it migrates
// to. Node 20 refuses it itself; Node 22 and 24 accept it. igord refuses it at load on every Node,
// naming the instruction and the function, by walking every instruction of the code section.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ErrorCode, IgordError } from "../../../src/errors.js";
import { ModuleCache, prepareAgent, prepareFromBytes } from "../../../src/loader/prepare.js";
import { parseManifest } from "../../../src/manifest/manifest.js";
import { findRefusedInstruction } from "../../../src/wasm/code-scan.js";
import { watAgent, wat2wasm } from "../../helpers/wat.js";

const RELAXED = [
  ["i8x16.relaxed_swizzle", "(i8x16.relaxed_swizzle (v128.const i64x2 0 0) (v128.const i64x2 0 0))"],
  ["i32x4.relaxed_trunc_f32x4_s", "(i32x4.relaxed_trunc_f32x4_s (v128.const i64x2 0 0))"],
  ["f32x4.relaxed_madd", "(f32x4.relaxed_madd (v128.const i64x2 0 0) (v128.const i64x2 0 0) (v128.const i64x2 0 0))"],
  ["f64x2.relaxed_nmadd", "(f64x2.relaxed_nmadd (v128.const i64x2 0 0) (v128.const i64x2 0 0) (v128.const i64x2 0 0))"],
  ["i32x4.relaxed_laneselect", "(i32x4.relaxed_laneselect (v128.const i64x2 0 0) (v128.const i64x2 0 0) (v128.const i64x2 0 0))"],
  ["f32x4.relaxed_min", "(f32x4.relaxed_min (v128.const i64x2 0 0) (v128.const i64x2 0 0))"],
  ["f64x2.relaxed_max", "(f64x2.relaxed_max (v128.const i64x2 0 0) (v128.const i64x2 0 0))"],
  ["i16x8.relaxed_q15mulr_s", "(i16x8.relaxed_q15mulr_s (v128.const i64x2 0 0) (v128.const i64x2 0 0))"],
  ["i32x4.relaxed_dot_i8x16_i7x16_add_s", "(i32x4.relaxed_dot_i8x16_i7x16_add_s (v128.const i64x2 0 0) (v128.const i64x2 0 0) (v128.const i64x2 0 0))"],
] as const;

async function agentUsing(instr: string): Promise<Uint8Array<ArrayBuffer>> {
  return wat2wasm(
    watAgent({
      imports: '(import "igor" "clock_now" (func $clock (result i64)))',
      extra: `(func $mixer (export "mixer") (result i32) (i32x4.extract_lane 0 ${instr}))`,
      onTick: "(drop (call $mixer))",
    }),
    { simd: true, relaxed_simd: true },
    { names: true },
  );
}

/** Every SIMD instruction with an immediate, its bytes chosen to look like relaxed opcodes if misread. */
const TRICKY_SIMD = `(func $tricky (export "tricky") (param $p i32) (result i32)
  (local $v v128)
  (local.set $v (v128.const i8x16 0xfd 0x80 0x02 0xfd 0x85 0x02 0xfd 0x93 0x02 0 0 0 0 0 0 0))
  (local.set $v (i8x16.shuffle 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 (local.get $v) (local.get $v)))
  (local.set $v (v128.load offset=65533 align=1 (local.get $p)))
  (local.set $v (v128.load32_zero offset=3 (local.get $p)))
  (local.set $v (v128.load8_lane offset=253 15 (local.get $p) (local.get $v)))
  (v128.store64_lane offset=2 1 (local.get $p) (local.get $v))
  (local.set $v (i8x16.replace_lane 15 (local.get $v) (i32.const 0xfd)))
  (drop (f64.const 0x1.fd80020000000p+0))
  (drop (i64.const -1))
  (block $a (block $b (br_table $a $b $a (i32.const 0xfd))))
  (i32x4.extract_lane 3 (local.get $v)))`;

describe("relaxed SIMD is refused at load, on every Node, naming the instruction and its function", () => {
  for (const [name, expr] of RELAXED) {
    it(`${name} is found in the function that uses it`, async () => {
      const bytes = await agentUsing(expr);
      const found = findRefusedInstruction(bytes);
      expect(found).toMatchObject({ reason: "relaxed_simd", instruction: name, functionName: "mixer" });
      // clock_now is imported: the function index counts it first.
      expect(found?.functionIndex).toBeGreaterThan(0);
    });
  }

  it("a module using plain SIMD with immediates that hold relaxed opcodes' bytes is not refused", async () => {
    const bytes = await wat2wasm(watAgent({ extra: TRICKY_SIMD }), { simd: true });
    expect(WebAssembly.validate(bytes)).toBe(true);
    expect(findRefusedInstruction(bytes)).toBeNull();
  });

  it("the committed agents and fixtures walk to their end with nothing refused", () => {
    for (const f of ["agents/c-ticker.wasm", "agents/c-wasi-clock.wasm", "test/fixtures/wasi/c-checkpoint-nonce.wasm", "test/fixtures/wasi/c-dice-arc4random.wasm"]) {
      expect(findRefusedInstruction(readFileSync(f)), f).toBeNull();
    }
  });

  it("an instruction the walk does not know is refused in a function that may hold relaxed SIMD past it, and left to the engine elsewhere", async () => {
    // The odd function's `nop` (0x01) is patched into the first byte of a 0xfb-prefixed (GC) instruction.
    const patch = async (after: string): Promise<Uint8Array> => {
      const bytes = await wat2wasm(watAgent({ extra: `(func $odd (export "odd") (nop) ${after})` }), { simd: true });
      // The body: no locals (0x00), nop (0x01), then the v128.const (0xfd 0x0c) or the end (0x0b).
      const at = Buffer.from(bytes).lastIndexOf(Buffer.from([0x00, 0x01, ...(after ? [0xfd, 0x0c] : [0x0b])]));
      expect(at).toBeGreaterThan(0);
      const patched = new Uint8Array(bytes);
      patched[at + 1] = 0xfb;
      return patched;
    };
    // Bytes 0xfd 0x80 0x02 (relaxed_swizzle's) in a constant past the unknown instruction: cannot tell.
    const odd = await patch("(drop (v128.const i8x16 0xfd 0x80 0x02 0 0 0 0 0 0 0 0 0 0 0 0 0))");
    expect(findRefusedInstruction(odd)).toMatchObject({ reason: "unknown", instruction: "0xfb 0xfd", functionName: null });
    // No such bytes anywhere: not walked, nothing refused (the engine decides on the GC instruction).
    expect(findRefusedInstruction(await patch(""))).toBeNull();
  });

  it("bytes that cannot be read are left to WebAssembly.validate to explain", async () => {
    const bytes = await agentUsing(RELAXED[0][1]);
    const found = findRefusedInstruction(bytes);
    expect(found).not.toBeNull();
    // Cut inside the instruction's own opcode: the code section runs past the end of the bytes.
    expect(findRefusedInstruction(bytes.subarray(0, found!.offset + 2))).toBeNull();
  });

  const dir = mkdtempSync(join(tmpdir(), "igord-relaxed-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("an agent file using relaxed SIMD is refused WASM_INSTRUCTION_REFUSED, and so are its bytes arriving from a peer", async () => {
    const bytes = await agentUsing("(f32x4.relaxed_madd (v128.const i64x2 0 0) (v128.const i64x2 0 0) (v128.const i64x2 0 0))");
    const path = join(dir, "mixer.wasm");
    writeFileSync(path, bytes);
    writeFileSync(join(dir, "mixer.manifest.json"), JSON.stringify({ capabilities: { clock: { version: 1 } } }));
    const offered = new Set(["clock"]);
    let err: unknown;
    try {
      prepareAgent({ wasmPath: path, offered, cache: new ModuleCache() });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(IgordError);
    expect((err as IgordError).code).toBe(ErrorCode.WasmInstructionRefused);
    expect((err as IgordError).message).toMatch(/relaxed SIMD \(f32x4\.relaxed_madd in function \d+ \(mixer\) at byte \d+\)/);
    expect(() =>
      prepareFromBytes({ agentId: "mixer", bytes, manifest: parseManifest(JSON.stringify({ capabilities: { clock: { version: 1 } } })), source: "a package from a peer", offered, cache: new ModuleCache() }),
    ).toThrow(expect.objectContaining({ code: ErrorCode.WasmInstructionRefused }));
  });
});
