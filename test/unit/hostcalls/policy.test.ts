import { describe, expect, it } from "vitest";
import wabtInit from "wabt";
import { type IgordError, isIgordError } from "../../../src/errors.js";
import { planImports } from "../../../src/hostcalls/policy.js";
import { parseManifest } from "../../../src/manifest/manifest.js";
import { checkAgentExports } from "../../../src/wasm/abi.js";
import { readModuleInfo } from "../../../src/wasm/module-info.js";
import { CAPS, wat2wasm, watAgent } from "../../helpers/wat.js";

const ALL = new Set(["clock", "log", "pricing", "rand", "wallet"]);

async function plan(imports: string, caps: string[], offered: ReadonlySet<string> = ALL) {
  const info = readModuleInfo(await wat2wasm(watAgent({ imports })));
  return planImports(info, parseManifest(JSON.stringify(CAPS(...caps))), offered);
}

async function refusal(
  imports: string,
  caps: string[],
  offered: ReadonlySet<string> = ALL,
): Promise<IgordError> {
  try {
    await plan(imports, caps, offered);
  } catch (e) {
    if (isIgordError(e)) return e;
    throw e;
  }
  throw new Error("expected a refusal");
}

describe("deny-by-default import policy", () => {
  it("grants declared hostcalls", async () => {
    const p = await plan(
      '(import "igor" "clock_now" (func (result i64))) (import "igor" "log_emit" (func (param i32 i32)))',
      ["clock", "log"],
    );
    expect(p.igor).toEqual(["clock_now", "log_emit"]);
  });

  it("refuses an undeclared hostcall, naming the import and the capability", async () => {
    const e = await refusal('(import "igor" "rand_bytes" (func (param i32 i32) (result i32)))', ["clock"]);
    expect(e.code).toBe("CAPABILITY_NOT_GRANTED");
    expect(e.message).toContain("igor.rand_bytes");
    expect(e.message).toContain('"rand"');
  });

  it("refuses a manifest that asks for capabilities the node does not offer, listing them", async () => {
    const e = await refusal("", ["clock", "rand", "log"], new Set(["clock"]));
    expect(e.code).toBe("CAPABILITY_NOT_OFFERED");
    expect(e.message).toContain('"log", "rand"');
  });

  it("refuses unknown hostcalls and modules, and a wrong hostcall signature", async () => {
    expect((await refusal('(import "igor" "teleport" (func))', [])).message).toMatch(
      /igor\.teleport.*no such hostcall/,
    );
    expect(
      (
        await refusal(
          '(import "wasi_unstable" "fd_write" (func (param i32 i32 i32 i32) (result i32)))',
          [],
        )
      ).message,
    ).toMatch(/wasi_unstable\.fd_write.*fix: build for wasi_snapshot_preview1/);
    expect((await refusal('(import "igor" "clock_now" (func (result i32)))', ["clock"])).message).toMatch(
      /signature/,
    );
  });

  it("refuses AssemblyScript imports that would read host time or entropy unrecorded", async () => {
    const seed = await refusal('(import "env" "seed" (func (result f64)))', ["rand"]);
    expect(seed.code).toBe("IMPORT_REFUSED");
    expect(seed.message).toMatch(/env\.seed.*Math\.random/);
    expect(
      (await refusal('(import "env" "performance.now" (func (result f64)))', ["clock"])).message,
    ).toMatch(/host clock/);
  });

  it("serves env.Date.now only with the clock capability, and env.abort always", async () => {
    const dateImport = '(import "env" "Date.now" (func (result f64)))';
    expect((await refusal(dateImport, [])).code).toBe("CAPABILITY_NOT_GRANTED");
    expect((await plan(dateImport, ["clock"])).env).toEqual(["Date.now"]);
    expect((await plan('(import "env" "abort" (func (param i32 i32 i32 i32)))', [])).env).toEqual(["abort"]);
  });
});

describe("refusals list every import at once", () => {
  it("an IMPORT_REFUSED error lists every refused import, each with what to do about it", async () => {
    const e = await refusal(
      `(import "env" "seed" (func (result f64)))
       (import "wasi_unstable" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
       (import "igor" "teleport" (func))
       (import "igor" "clock_now" (func (result i32)))
       (import "env" "table" (table 1 funcref))`,
      ["clock", "rand"],
    );
    expect(e.code).toBe("IMPORT_REFUSED");
    const listed = e.details.imports as { import: string; reason: string; fix: string }[];
    expect(listed.map((i) => i.import)).toEqual([
      "env.seed",
      "wasi_unstable.fd_write",
      "igor.teleport",
      "igor.clock_now",
      "env.table",
    ]);
    for (const i of listed) {
      expect(i.fix.length, i.import).toBeGreaterThan(0);
      expect(e.message).toContain(i.import);
      expect(e.message).toContain(i.fix);
    }
    expect(e.message).toMatch(/^5 imports are refused/);
    expect(listed[2]?.fix).toMatch(/clock_now, rand_bytes, log_emit/);
    expect(listed[3]?.fix).toMatch(/\(\) -> \(i64\)/);
  });

  it("refused and ungranted imports in one module are all reported, the ungranted with the capability to add", async () => {
    const e = await refusal(
      `(import "env" "performance.now" (func (result f64)))
       (import "igor" "rand_bytes" (func (param i32 i32) (result i32)))
       (import "igor" "wallet_balance" (func (result i64)))`,
      [],
    );
    expect(e.code).toBe("IMPORT_REFUSED");
    expect((e.details.imports as unknown[]).length).toBe(3);
    expect(e.message).toMatch(/igor\.rand_bytes.*grant capability "rand" in the manifest/);
    expect(e.message).toMatch(/igor\.wallet_balance.*grant capability "wallet"/);
    const ungranted = await refusal(
      '(import "igor" "rand_bytes" (func (param i32 i32) (result i32))) (import "igor" "wallet_balance" (func (result i64)))',
      [],
    );
    expect(ungranted.code).toBe("CAPABILITY_NOT_GRANTED");
    expect(ungranted.message).toMatch(/igor\.rand_bytes.*"rand".*igor\.wallet_balance.*"wallet"/);
    expect(ungranted.details.capabilities).toEqual(["rand", "wallet"]);
  });
});

describe("lifecycle exports", () => {
  it("names every missing export", async () => {
    const info = readModuleInfo(await wat2wasm(watAgent({ omit: ["agent_checkpoint_ptr", "agent_resume"] })));
    expect(() => checkAgentExports(info)).toThrow(
      /missing required exports agent_checkpoint_ptr, agent_resume/,
    );
  });

  it("accepts a void agent_tick and refuses a wrong signature", async () => {
    const voidTick = watAgent({ omit: ["agent_tick"], extra: '(func (export "agent_tick"))' });
    expect(() => checkAgentExports(readModuleInfo(readModuleInfoBytes(voidTick)))).not.toThrow();
    const bad = watAgent({
      omit: ["agent_checkpoint"],
      extra: '(func (export "agent_checkpoint") (result i64) (i64.const 0))',
    });
    expect(() => checkAgentExports(readModuleInfo(readModuleInfoBytes(bad)))).toThrow(
      /agent_checkpoint has signature \(\) -> \(i64\)/,
    );
  });
});

// Synchronous WAT assembly for the export tests above.
const wabt = await wabtInit();
function readModuleInfoBytes(text: string): Uint8Array {
  const m = wabt.parseWat("t.wat", text);
  const out = new Uint8Array(m.toBinary({}).buffer);
  m.destroy();
  return out;
}

describe("wasi_snapshot_preview1 imports", () => {
  it("link whatever the manifest grants, with the capabilities WASI is served through", async () => {
    const p = await plan(
      `(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
       (import "wasi_snapshot_preview1" "random_get" (func (param i32 i32) (result i32)))
       (import "wasi_snapshot_preview1" "sock_accept" (func (param i32 i32 i32) (result i32)))
       (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))`,
      ["clock"],
    );
    expect(p.wasi).toEqual({ functions: ["fd_write", "random_get", "sock_accept", "proc_exit"], clock: true, rand: false, log: false, identity: "" });
    expect((await plan("", [])).wasi).toBeNull();
  });

  it("a module with several refused imports gets one error naming all of them, each with what to do", async () => {
    const e = await refusal(
      `(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32) (result i32)))
       (import "wasi_snapshot_preview1" "fd_teleport" (func (param i32) (result i32)))
       (import "wasi_unstable" "clock_time_get" (func (param i32 i64 i32) (result i32)))
       (import "wasi:clocks/wall-clock@0.2.0" "now" (func (param i32)))
       (import "host" "print" (func (param i32 i32)))
       (import "igor" "rand_bytes" (func (param i32 i32) (result i32)))`,
      [],
    );
    expect(e.code).toBe("IMPORT_REFUSED");
    const listed = e.details.imports as { import: string; reason: string; fix: string }[];
    expect(listed.map((i) => [i.import, i.fix])).toEqual([
      ["wasi_snapshot_preview1.fd_write", "declare it as (i32, i32, i32, i32) -> (i32)"],
      ["wasi_snapshot_preview1.fd_teleport", expect.stringMatching(/remove the import/)],
      ["wasi_unstable.clock_time_get", expect.stringMatching(/build for wasi_snapshot_preview1 \(clang --target=wasm32-wasi, rustc --target wasm32-wasip1, tinygo -target=wasi\)/)],
      ["wasi:clocks/wall-clock@0.2.0.now", expect.stringMatching(/build for wasi_snapshot_preview1/)],
      ["host.print", "remove the import, or replace it with an igor.* hostcall"],
      ["igor.rand_bytes", expect.stringMatching(/grant capability "rand"/)],
    ]);
    expect(e.message).toMatch(/^6 imports are refused: \(1\) wasi_snapshot_preview1\.fd_write: signature/);
    for (const i of listed) expect(e.message).toContain(i.fix);
  });
});
