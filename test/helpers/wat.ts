// Hand-written WAT test modules, assembled with the wabt package.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import wabtInit from "wabt";
import { leb } from "../../src/wasm/module-info.js";

let wabt: Awaited<ReturnType<typeof wabtInit>> | null = null;

/** `names`: the function names go into the module's name section, as a debug build's do. */
export async function wat2wasm(
  text: string,
  features: { reference_types?: boolean; simd?: boolean; relaxed_simd?: boolean } = {},
  o: { names?: boolean } = {},
): Promise<Uint8Array<ArrayBuffer>> {
  wabt ??= await wabtInit();
  const mod = wabt.parseWat("fixture.wat", text, { multi_value: true, bulk_memory: true, ...features });
  try {
    return new Uint8Array(mod.toBinary({ write_debug_names: o.names === true }).buffer);
  } finally {
    mod.destroy();
  }
}

export interface WatAgentOptions {
  /** Extra import declarations. */
  imports?: string;
  /** Code run at the start of agent_tick, after the tick counter was incremented ($ticks). */
  onTick?: string;
  /** agent_tick's return value expression (i32). */
  more?: string;
  memory?: string;
  extra?: string;
  omit?: string[];
}

/**
 * A minimal ABI-complete agent: its state is a 4-byte tick counter at address 0.
 */
export function watAgent(o: WatAgentOptions = {}): string {
  const omit = new Set(o.omit ?? []);
  const fn = (name: string, body: string): string => (omit.has(name) ? "" : body);
  return `(module
  ${o.imports ?? ""}
  ${o.memory ?? '(memory (export "memory") 1)'}
  (global $ticks (mut i32) (i32.const 0))
  ${fn("agent_init", '(func (export "agent_init"))')}
  ${fn(
    "agent_tick",
    `(func (export "agent_tick") (result i32)
    (global.set $ticks (i32.add (global.get $ticks) (i32.const 1)))
    ${o.onTick ?? ""}
    ${o.more ?? "(i32.const 0)"})`,
  )}
  ${fn("agent_checkpoint", '(func (export "agent_checkpoint") (result i32) (i32.store (i32.const 0) (global.get $ticks)) (i32.const 4))')}
  ${fn("agent_checkpoint_ptr", '(func (export "agent_checkpoint_ptr") (result i32) (i32.const 0))')}
  ${fn(
    "agent_resume",
    `(func (export "agent_resume") (param $p i32) (param $n i32)
    (if (i32.eq (local.get $n) (i32.const 4)) (then (global.set $ticks (i32.load (local.get $p))))))`,
  )}
  ${fn("malloc", '(func (export "malloc") (param i32) (result i32) (i32.const 1024))')}
  ${o.extra ?? ""}
)`;
}

/**
 * Breaks the replay rule only once it has ticked (agent_resume adds 1000 to a non-zero counter): a
 * fresh agent passes the check at load, a resume from a ticked state does not.
 */
export const BUMPS_ONCE_TICKED = watAgent({
  omit: ["agent_resume"],
  extra: `(func (export "agent_resume") (param $p i32) (param $n i32)
    (if (i32.eq (local.get $n) (i32.const 4)) (then
      (global.set $ticks (i32.load (local.get $p)))
      (if (i32.gt_u (global.get $ticks) (i32.const 0)) (then (global.set $ticks (i32.add (global.get $ticks) (i32.const 1000))))))))`,
});

export async function writeWat(dir: string, name: string, text: string, manifest?: unknown): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}.wasm`);
  writeFileSync(path, await wat2wasm(text));
  if (manifest !== undefined) writeFileSync(join(dir, `${name}.manifest.json`), JSON.stringify(manifest));
  return path;
}

export const CAPS = (...names: string[]) => ({
  capabilities: Object.fromEntries(names.map((n) => [n, { version: 1 }])),
});

/** `bytes` with a custom section `name` carrying `payload` appended (what any module author can write; a debug build's DWARF is such sections). */
export function withCustomSection(bytes: Uint8Array, name: string, payload: Uint8Array | string): Uint8Array<ArrayBuffer> {
  const enc = new TextEncoder();
  const body = typeof payload === "string" ? enc.encode(payload) : payload;
  const head = Uint8Array.from([...leb(enc.encode(name).byteLength), ...enc.encode(name)]);
  const size = leb(head.byteLength + body.byteLength);
  const out = new Uint8Array(bytes.byteLength + 1 + size.length + head.byteLength + body.byteLength);
  out.set(bytes);
  out.set([0, ...size], bytes.byteLength);
  out.set(head, bytes.byteLength + 1 + size.length);
  out.set(body, bytes.byteLength + 1 + size.length + head.byteLength);
  return out;
}
