// The committed C example agents: always checked for the ABI they promise; rebuilt from their sources
// and compared byte for byte when the clang that built them is installed (CI needs no C compiler).
import { execFileSync, spawnSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { HOSTCALLS } from "../../src/hostcalls/registry.js";
import { EXAMPLES, ROOT, tempDir } from "../helpers/node.js";

const ARTIFACTS = ["c-ticker.wasm", "c-wasi-clock.wasm"];
// The C test fixtures (test/fixtures/wasi/c/NAME.c → test/fixtures/wasi/c-NAME.wasm), built by the same script.
const C_FIXTURES = join(ROOT, "test", "fixtures", "wasi");
const FIXTURE_ARTIFACTS = readdirSync(join(C_FIXTURES, "c")).filter((f) => f.endsWith(".c")).map((f) => `c-${f.slice(0, -2)}.wasm`);
const builtWith = readFileSync(join(EXAMPLES, "c", "BUILT_WITH"), "utf8").trim();

function installedClang(): string | null {
  const r = spawnSync("clang", ["--version"], { encoding: "utf8" });
  return r.status === 0 ? (r.stdout.split("\n")[0] ?? "").trim() : null;
}

/**
 * What of the build script's toolchain is missing, by building a probe the way it builds each agent
 * (clang alone is not enough: wasm-ld, wasi-libc and the wasm32 compiler-rt builtins are packages of
 * their own); null when both builds work.
 */
function missingToolchain(): string | null {
  const dir = tempDir("igord-c-probe-");
  const free = join(dir, "free.c");
  const wasi = join(dir, "wasi.c");
  writeFileSync(free, "int probe(void) { return 0; }\n");
  writeFileSync(wasi, "#include <stdio.h>\nint probe(void) { return printf(\"\"); }\n");
  const sysroot = process.env.WASI_SYSROOT ?? "/usr";
  for (const args of [
    ["--target=wasm32", "-ffreestanding", "-nostdlib", "-Wl,--no-entry", "-Wl,--export=probe", "-o", join(dir, "free.wasm"), free],
    ["--target=wasm32-wasi", `--sysroot=${sysroot}`, "-mexec-model=reactor", "-o", join(dir, "wasi.wasm"), wasi],
  ]) {
    const r = spawnSync("clang", args, { encoding: "utf8" });
    if (r.status === 0) continue;
    const lines = (r.stderr || String(r.error)).trim().split("\n");
    return `clang ${args[0]} cannot build here (${(lines.find((l) => /error/.test(l)) ?? lines[0] ?? "").trim()})`;
  }
  return null;
}

function surface(file: string) {
  const m = new WebAssembly.Module(readFileSync(join(EXAMPLES, file)));
  return {
    imports: WebAssembly.Module.imports(m).map((i) => `${i.module}.${i.name}`),
    exports: WebAssembly.Module.exports(m).map((e) => e.name).sort(),
  };
}

describe("C example agents", () => {
  it("the freestanding agent imports only igor hostcalls; the wasi-libc one only WASI preview1, as a reactor exporting malloc", () => {
    const lifecycle = ["agent_checkpoint", "agent_checkpoint_ptr", "agent_init", "agent_resume", "agent_tick"];
    expect(surface("c-ticker.wasm")).toEqual({ imports: ["igor.clock_now", "igor.log_emit"], exports: [...lifecycle, "malloc", "memory"] });
    const wasi = surface("c-wasi-clock.wasm");
    expect(wasi.imports.every((i) => i.startsWith("wasi_snapshot_preview1."))).toBe(true);
    expect(wasi.imports).toEqual(expect.arrayContaining(["wasi_snapshot_preview1.clock_time_get", "wasi_snapshot_preview1.fd_write"]));
    expect(wasi.exports).toEqual(["_initialize", ...lifecycle, "free", "malloc", "memory"]);
  });

  it("sdk/c/igor.h declares every igor hostcall under its import name, with the registry's signature", () => {
    const header = readFileSync(join(ROOT, "sdk", "c", "igor.h"), "utf8");
    const wasmType = (c: string): string => (/int64_t/.test(c) ? "i64" : "i32");
    const declared = [...header.matchAll(/IGOR_IMPORT\((\w+)\)\s+([\w\s]+?)\s+igor_\w+\(([^)]*)\);/g)].map(([, name, ret, params]) => ({
      name,
      results: ret!.trim() === "void" ? [] : [wasmType(ret!)],
      params: params!.trim() === "void" ? [] : params!.split(",").map(wasmType),
    }));
    expect(declared).toEqual(HOSTCALLS.map((h) => ({ name: h.name, results: [...h.results], params: [...h.params] })));
  });

  it("scripts/build-c-agents.sh rebuilds the committed .wasm byte for byte from agents/c and test/fixtures/wasi/c (with the same clang)", (ctx) => {
    const clang = installedClang();
    if (clang === null) {
      ctx.skip(`clang is not installed: the committed ${ARTIFACTS.join(", ")} are not rebuilt (apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32)`);
      return;
    }
    const missing = missingToolchain();
    if (missing !== null) {
      ctx.skip(`${missing}: the committed ${ARTIFACTS.join(", ")} are not rebuilt (apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32)`);
      return;
    }
    if (clang !== builtWith) {
      ctx.skip(`the committed agents were built with "${builtWith}", this machine has "${clang}": their bytes are not comparable`);
      return;
    }
    const out = tempDir("igord-c-agents-");
    execFileSync(join(ROOT, "scripts", "build-c-agents.sh"), [out], { stdio: "pipe" });
    for (const f of ARTIFACTS) expect(Buffer.compare(readFileSync(join(out, f)), readFileSync(join(EXAMPLES, f))), f).toBe(0);
    expect(FIXTURE_ARTIFACTS.length).toBeGreaterThan(0);
    for (const f of FIXTURE_ARTIFACTS) expect(Buffer.compare(readFileSync(join(out, f)), readFileSync(join(C_FIXTURES, f))), f).toBe(0);
  });
});
