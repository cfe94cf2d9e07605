// Rewrites an agent module at load so that a replay instance can be put back to its
// post-initialisation image instead of being rebuilt (the pooling-allocator idea of wasmtime, in JS).
// Two functions are added (wasm/reset-functions.ts): `igord.save` copies every mutable global and
// every table the module defines into shadow copies only these two functions can reach, and
// `igord.restore` copies them back — one call per reset instead of one JS accessor call per global
// and per table entry, bit for bit (NaN payloads, i64 and references never pass through JS values).
// The module's memory is exported too when it is not, so the host can copy its bytes. Function bodies
// are untouched; the additions sit at the end of each index space, where the module's own code (valid
// before they existed) cannot name them, plus one custom section naming the module for the replay pool.
//
// A module is left as it is (null) when some of its state could not be restored, so a reused
// instance could behave differently from a fresh one: an imported table or mutable global (shared
// with the host), a v128 global, a passive data or element segment (data.drop / elem.drop change
// instance state no export exposes), more than one memory, or encodings this reader does not know
// (GC types, table initialisers, 64-bit tables).
// The marker section is the pool's only sign that a module was rewritten (a module posted to a
// worker keeps nothing else), so a marker the module's author wrote is removed, never trusted: it
// would pool an instance whose globals were never saved, or one keyed as another agent's module.
import { concatBytes, leb, Reader, sections } from "./module-info.js";
import { type ResetLayout, resetFunctionBodies } from "./reset-functions.js";

/** Custom section marking a rewritten module; its payload is the pool key (hash and memory cap). */
export const RESET_SECTION = "igord.reset";
/** `() -> ()`: copies the instance's mutable globals and tables into their shadows (once, after agent_init). */
export const RESET_SAVE_EXPORT = "igord.save";
/**
 * `() -> i32`: copies the shadows back into the mutable globals and tables and returns 1, or returns 0
 * and changes nothing when a table or the memory no longer has its saved size (neither can shrink).
 */
export const RESET_RESTORE_EXPORT = "igord.restore";
export const RESET_MEMORY_EXPORT = "igord.memory";

/**
 * The most mutable globals a module may define and still be rewritten: each is saved and restored
 * by an instruction pair in the added functions, and the rewrite doubles them (WebAssembly allows
 * 1,000,000 globals in all). A module with more is run as it is, its replay instances fresh.
 */
export const MAX_RESET_GLOBALS = 10_000;

class Ineligible extends Error {}

const NUM_OR_REF = new Set([0x7f, 0x7e, 0x7d, 0x7c, 0x70, 0x6f]);

/** Skips a constant expression (the forms a global, segment offset or element may use). */
function skipConstExpr(r: Reader): void {
  for (;;) {
    const op = r.byte();
    switch (op) {
      case 0x0b:
        return;
      case 0x41:
      case 0x42:
      case 0x23:
      case 0xd2:
      case 0xd0:
        r.u32();
        break;
      case 0x43:
        r.pos += 4;
        break;
      case 0x44:
        r.pos += 8;
        break;
      case 0x6a:
      case 0x6b:
      case 0x6c:
      case 0x7c:
      case 0x7d:
      case 0x7e:
        break;
      default:
        throw new Ineligible(`constant expression opcode 0x${op.toString(16)}`);
    }
  }
}

function skipLimits(r: Reader): void {
  const flags = r.byte();
  if (flags & 0x04) throw new Ineligible("64-bit limits");
  r.u32();
  if (flags & 0x01) r.u32();
}

function skipVec(r: Reader, each: () => void): void {
  const n = r.u32();
  for (let i = 0; i < n; i++) each();
}

function utf8(s: string): number[] {
  const b = new TextEncoder().encode(s);
  return [...leb(b.length), ...b];
}

/** A section of `id` whose body is `parts`, copied once (never spread: a code section can be megabytes). */
function section(id: number, parts: readonly Uint8Array[]): Uint8Array {
  const size = parts.reduce((n, p) => n + p.length, 0);
  return concatBytes([Uint8Array.from([id, ...leb(size)]), ...parts]);
}

/**
 * The module with reset exports and the RESET_SECTION carrying `key`, or null when an instance of it
 * cannot be reset faithfully (see the file comment). Call only on bytes WebAssembly.validate accepted.
 */
export function withResetExports(bytes: Uint8Array, key: string): Uint8Array<ArrayBuffer> | null {
  try {
    return rewrite(bytes, key);
  } catch (e) {
    if (e instanceof Ineligible) return null;
    throw e;
  }
}

function isResetMarker(bytes: Uint8Array, s: { id: number; bodyStart: number; end: number }): boolean {
  return s.id === 0 && new Reader(bytes, s.bodyStart, s.end).name() === RESET_SECTION;
}

/** The module without any RESET_SECTION (what is run when withResetExports left it alone). */
export function withoutResetMarker(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  const all = sections(bytes);
  if (!all.some((s) => isResetMarker(bytes, s))) return bytes as Uint8Array<ArrayBuffer>;
  return concatBytes([bytes.subarray(0, 8), ...all.filter((s) => !isResetMarker(bytes, s)).map((s) => bytes.subarray(s.start, s.end))]);
}

/** A section's vector with `extra` entries (already encoded) appended. */
function appended(bytes: Uint8Array, s: { id: number; bodyStart: number; end: number }, count: number, extra: number[][]): Uint8Array {
  const r = new Reader(bytes, s.bodyStart, s.end);
  r.u32();
  return section(s.id, [Uint8Array.from(leb(count + extra.length)), bytes.subarray(r.pos, s.end), concatBytes(extra)]);
}

/** Counts a type section's entries; only plain function types (a rec group would shift later indices). */
function countFuncTypes(r: Reader): number {
  const n = r.u32();
  for (let i = 0; i < n; i++) {
    if (r.byte() !== 0x60) throw new Ineligible("a type other than a function type");
    for (let part = 0; part < 2; part++) {
      skipVec(r, () => {
        const t = r.byte();
        if (!NUM_OR_REF.has(t) && t !== 0x7b) throw new Ineligible(`value type 0x${t.toString(16)}`);
      });
    }
  }
  return n;
}

function rewrite(bytes: Uint8Array, key: string): Uint8Array<ArrayBuffer> {
  const all = sections(bytes);
  let importedGlobals = 0;
  let importedFuncs = 0;
  let definedGlobals = 0;
  let definedFuncs = 0;
  let types = -1;
  let hasMemory = false;
  const layout: ResetLayout = { globals: [], tables: [], memory: false, shadowGlobalBase: 0, shadowTableBase: 0 };
  const exportNames: string[] = [];
  let exportedMemory = false;
  let hasCode = false;
  for (const s of all) {
    const r = new Reader(bytes, s.bodyStart, s.end);
    if (s.id === 1) {
      types = countFuncTypes(r);
    } else if (s.id === 2) {
      skipVec(r, () => {
        r.name();
        r.name();
        const kind = r.byte();
        if (kind === 0) {
          r.u32();
          importedFuncs++;
        } else if (kind === 1) throw new Ineligible("imported table");
        else if (kind === 2) {
          hasMemory = true;
          skipLimits(r);
        } else if (kind === 3) {
          r.byte();
          if (r.byte() !== 0) throw new Ineligible("imported mutable global");
          importedGlobals++;
        } else if (kind === 4) {
          r.byte();
          r.u32();
        } else throw new Ineligible(`import kind ${kind}`);
      });
    } else if (s.id === 3) {
      definedFuncs = r.u32();
    } else if (s.id === 4) {
      skipVec(r, () => {
        const t = r.byte();
        if (t !== 0x70 && t !== 0x6f) throw new Ineligible("table type");
        skipLimits(r);
        layout.tables.push({ index: layout.tables.length, type: t });
      });
    } else if (s.id === 5) {
      const n = r.u32();
      if (n > 1 || (n === 1 && hasMemory)) throw new Ineligible("more than one memory");
      if (n === 1) hasMemory = true;
    } else if (s.id === 6) {
      skipVec(r, () => {
        const t = r.byte();
        if (!NUM_OR_REF.has(t)) throw new Ineligible(`global type 0x${t.toString(16)}`);
        if (r.byte() !== 0) layout.globals.push({ index: importedGlobals + definedGlobals, type: t });
        skipConstExpr(r);
        definedGlobals++;
      });
    } else if (s.id === 7) {
      skipVec(r, () => {
        const name = r.name();
        exportNames.push(name);
        // The sandbox reads the memory exported as "memory"; one exported under another name only is
        // exported again for the image (or its bytes would outlive a reset).
        if (r.byte() === 2 && name === "memory") exportedMemory = true;
        r.u32();
      });
    } else if (s.id === 9) {
      skipVec(r, () => {
        const flags = r.u32();
        if (flags === 1 || flags === 5) throw new Ineligible("passive element segment");
        if (flags > 7) throw new Ineligible(`element segment flags ${flags}`);
        if (flags === 2 || flags === 6) r.u32();
        if ((flags & 1) === 0) skipConstExpr(r);
        if (flags & 4) {
          if (flags !== 4) r.byte();
          skipVec(r, () => skipConstExpr(r));
        } else {
          if (flags !== 0) r.byte();
          skipVec(r, () => r.u32());
        }
      });
    } else if (s.id === 10) {
      hasCode = true;
    } else if (s.id === 11) {
      skipVec(r, () => {
        const flags = r.u32();
        if (flags === 1) throw new Ineligible("passive data segment");
        if (flags === 2) r.u32();
        else if (flags !== 0) throw new Ineligible(`data segment flags ${flags}`);
        skipConstExpr(r);
        const size = r.u32();
        r.pos += size;
      });
    }
  }
  // An agent defines its lifecycle functions, so these sections exist; the additions extend them.
  if (types < 0 || definedFuncs === 0 || !hasCode) throw new Ineligible("no type, function or code section");
  if (layout.globals.length > MAX_RESET_GLOBALS) throw new Ineligible(`${layout.globals.length} mutable globals`);
  if (!all.some((s) => s.id === 7)) throw new Ineligible("no export section");
  if (exportNames.some((n) => n.startsWith("igord."))) throw new Ineligible("export names in igord's namespace");
  layout.memory = hasMemory;
  layout.shadowGlobalBase = importedGlobals + definedGlobals;
  layout.shadowTableBase = layout.tables.length;
  const { save, restore, shadowGlobals, shadowTables } = resetFunctionBodies(layout);
  // Type `types` is () -> (), `types + 1` is () -> i32; the functions are the last two indices.
  const saveIndex = importedFuncs + definedFuncs;
  const exported: number[][] = [
    [...utf8(RESET_SAVE_EXPORT), 0, ...leb(saveIndex)],
    [...utf8(RESET_RESTORE_EXPORT), 0, ...leb(saveIndex + 1)],
  ];
  if (hasMemory && !exportedMemory) exported.push([...utf8(RESET_MEMORY_EXPORT), 2, 0]);
  const body = (code: number[]): number[] => leb(code.length).concat(code);
  const extend: Record<number, [number, number[][]]> = {
    1: [types, [[0x60, 0, 0], [0x60, 0, 1, 0x7f]]],
    3: [definedFuncs, [leb(types), leb(types + 1)]],
    4: [layout.tables.length, shadowTables],
    6: [definedGlobals, shadowGlobals],
    7: [exportNames.length, exported],
    10: [definedFuncs, [body(save), body(restore)]],
  };
  const custom = section(0, [Uint8Array.from(utf8(RESET_SECTION)), new TextEncoder().encode(key)]);
  const parts: Uint8Array[] = [bytes.subarray(0, 8)];
  for (const s of all) {
    if (isResetMarker(bytes, s)) continue;
    // A module without globals still gets the memory's saved page count: a global section of its
    // own, where one goes (after the memory and tag sections, before the exports).
    if (s.id === 7 && !all.some((g) => g.id === 6) && shadowGlobals.length > 0) parts.push(section(6, [Uint8Array.from(leb(shadowGlobals.length)), concatBytes(shadowGlobals)]));
    const ext = extend[s.id];
    parts.push(ext && ext[1].length > 0 ? appended(bytes, s, ext[0], ext[1]) : bytes.subarray(s.start, s.end));
  }
  parts.push(custom);
  return concatBytes(parts);
}
