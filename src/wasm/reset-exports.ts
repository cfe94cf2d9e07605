// Rewrites an agent module at load so that a replay instance can be put back to its
// post-initialisation image instead of being rebuilt (the pooling-allocator idea of wasmtime, in JS):
// every mutable global and every table the module defines becomes an export (its memory too, when not
// exported), so the host can read and restore all the state an instance holds. Function bodies are
// untouched; only exports and one custom section (naming the module for the replay pool) are added.
//
// A module is left as it is (null) when some of its state could not be restored from JS, so a reused
// instance could behave differently from a fresh one: an imported table or mutable global (shared
// with the host), a v128 global (not readable from JS), a passive data or element segment (data.drop /
// elem.drop change instance state no export exposes), more than one memory, or encodings this reader
// does not know (GC types, table initialisers, 64-bit tables).
// The marker section is the pool's only sign that a module was rewritten (a module posted to a
// worker keeps nothing else), so a marker the module's author wrote is removed, never trusted: it
// would pool an instance whose globals were never exported, or one keyed as another agent's module.
import { concatBytes, leb, Reader, sections } from "./module-info.js";

/** Custom section marking a rewritten module; its payload is the pool key (hash and memory cap). */
export const RESET_SECTION = "igord.reset";
export const RESET_GLOBAL_PREFIX = "igord.global.";
export const RESET_TABLE_PREFIX = "igord.table.";
export const RESET_MEMORY_EXPORT = "igord.memory";

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
  return [...leb(b.byteLength), ...b];
}

function section(id: number, body: number[]): Uint8Array {
  return Uint8Array.from([id, ...leb(body.length), ...body]);
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

function rewrite(bytes: Uint8Array, key: string): Uint8Array<ArrayBuffer> {
  const all = sections(bytes);
  let importedGlobals = 0;
  let definedTables = 0;
  let hasMemory = false;
  const mutableGlobals: number[] = [];
  const exportNames: string[] = [];
  let exportedMemory = false;
  let exportEntries: Uint8Array | null = null;
  for (const s of all) {
    const r = new Reader(bytes, s.bodyStart, s.end);
    if (s.id === 2) {
      skipVec(r, () => {
        r.name();
        r.name();
        const kind = r.byte();
        if (kind === 0) r.u32();
        else if (kind === 1) throw new Ineligible("imported table");
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
    } else if (s.id === 4) {
      skipVec(r, () => {
        const t = r.byte();
        if (t !== 0x70 && t !== 0x6f) throw new Ineligible("table type");
        skipLimits(r);
        definedTables++;
      });
    } else if (s.id === 5) {
      const n = r.u32();
      if (n > 1 || (n === 1 && hasMemory)) throw new Ineligible("more than one memory");
      if (n === 1) hasMemory = true;
    } else if (s.id === 6) {
      let index = importedGlobals;
      skipVec(r, () => {
        const t = r.byte();
        if (!NUM_OR_REF.has(t)) throw new Ineligible(`global type 0x${t.toString(16)}`);
        if (r.byte() !== 0) mutableGlobals.push(index);
        skipConstExpr(r);
        index++;
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
      const count = new Reader(bytes, s.bodyStart, s.end);
      count.u32();
      exportEntries = bytes.subarray(count.pos, s.end);
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
  if (!exportEntries) throw new Ineligible("no export section");
  if (exportNames.some((n) => n.startsWith("igord."))) throw new Ineligible("export names in igord's namespace");
  const added: number[][] = [];
  for (const g of mutableGlobals) added.push([...utf8(`${RESET_GLOBAL_PREFIX}${g}`), 3, ...leb(g)]);
  for (let t = 0; t < definedTables; t++) added.push([...utf8(`${RESET_TABLE_PREFIX}${t}`), 1, ...leb(t)]);
  if (hasMemory && !exportedMemory) added.push([...utf8(RESET_MEMORY_EXPORT), 2, 0]);
  const exportBody = [...leb(exportNames.length + added.length), ...exportEntries, ...added.flat()];
  const custom = section(0, [...utf8(RESET_SECTION), ...new TextEncoder().encode(key)]);
  const parts: Uint8Array[] = [bytes.subarray(0, 8)];
  for (const s of all) {
    if (!isResetMarker(bytes, s)) parts.push(s.id === 7 ? section(7, exportBody) : bytes.subarray(s.start, s.end));
  }
  parts.push(custom);
  return concatBytes(parts);
}
