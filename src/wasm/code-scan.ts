// Walks every instruction of a module's code section to find the ones igord refuses at load though
// the engine may accept them: relaxed SIMD (0xFD 0x100–0x113), whose results the specification
// leaves to the CPU (fused or unfused multiply-add, the lanes of an out-of-range swizzle, a NaN's
// min/max), so a tick that uses one may compute otherwise in a replay or on the node it migrates to;
// and, in a function that must be walked, any instruction this reader does not know (past it, it
// cannot tell). Node 20 refuses relaxed SIMD itself; Node 22 and 24 accept it.
//
// Only functions holding the bytes a relaxed SIMD opcode starts with are walked (nextSuspect, a
// native byte search): most modules are not walked at all. The walk reads immediates only to skip
// them: it needs no type information and does not validate. Bytes it cannot read (a truncated body,
// an over-long LEB) end it with no finding, and WebAssembly.validate explains them.
import { Reader, sections } from "./module-info.js";

/** The first and last sub-opcode of relaxed SIMD under the 0xFD prefix. */
const RELAXED_SIMD_FIRST = 0x100;
const RELAXED_SIMD_LAST = 0x113;

const RELAXED_SIMD_NAMES: readonly string[] = [
  "i8x16.relaxed_swizzle",
  "i32x4.relaxed_trunc_f32x4_s",
  "i32x4.relaxed_trunc_f32x4_u",
  "i32x4.relaxed_trunc_f64x2_s_zero",
  "i32x4.relaxed_trunc_f64x2_u_zero",
  "f32x4.relaxed_madd",
  "f32x4.relaxed_nmadd",
  "f64x2.relaxed_madd",
  "f64x2.relaxed_nmadd",
  "i8x16.relaxed_laneselect",
  "i16x8.relaxed_laneselect",
  "i32x4.relaxed_laneselect",
  "i64x2.relaxed_laneselect",
  "f32x4.relaxed_min",
  "f32x4.relaxed_max",
  "f64x2.relaxed_min",
  "f64x2.relaxed_max",
  "i16x8.relaxed_q15mulr_s",
  "i16x8.relaxed_dot_i8x16_i7x16_s",
  "i32x4.relaxed_dot_i8x16_i7x16_add_s",
];

export interface RefusedInstruction {
  reason: "relaxed_simd" | "unknown";
  /** The instruction's name (relaxed SIMD) or its opcode bytes in hex ("0xfb 0x01"). */
  instruction: string;
  /** The function's index in the module's function index space (imported functions first). */
  functionIndex: number;
  /** The function's name from the module's name section, if it has one. */
  functionName: string | null;
  /** The instruction's offset in the file. */
  offset: number;
}

class Unreadable extends Error {}

/** Opcodes (no prefix) followed by one LEB128 immediate. */
const ONE_LEB = new Set([
  0x07, 0x08, 0x09, 0x0c, 0x0d, 0x10, 0x12, 0x14, 0x15, 0x18, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x3f, 0x40, 0x41, 0x42, 0xd2, 0xd5, 0xd6,
]);
/** Opcodes (no prefix) with no immediate. */
function noImmediate(op: number): boolean {
  return op <= 0x01 || op === 0x05 || op === 0x0a || op === 0x0b || op === 0x0f || op === 0x19 || op === 0x1a || op === 0x1b || (op >= 0x45 && op <= 0xc4) || op === 0xd1 || op === 0xd3 || op === 0xd4;
}

/** What follows each one-byte opcode, for the walk's fast path; OTHER ones go through `instruction`. */
const NONE = 0;
const LEB = 1;
const MEMARG = 2;
const OTHER = 3;
const KIND = new Uint8Array(256).fill(OTHER);
for (let op = 0; op < 256; op++) {
  if (noImmediate(op)) KIND[op] = NONE;
  else if (ONE_LEB.has(op)) KIND[op] = LEB;
  else if (op >= 0x28 && op <= 0x3e) KIND[op] = MEMARG;
}

/** The offset after the LEB128 number at `pos`. */
function afterLeb(b: Uint8Array, pos: number, end: number): number {
  for (let i = 0; i < 10; i++) {
    if (pos >= end) throw new Unreadable();
    if (((b[pos++] as number) & 0x80) === 0) return pos;
  }
  throw new Unreadable();
}

/** The offset after the memory argument at `pos` (bit 6 of its alignment set: a memory index follows). */
function afterMemarg(b: Uint8Array, pos: number, end: number): number {
  const multiMemory = ((b[pos] as number) & 0x40) !== 0;
  pos = afterLeb(b, pos, end);
  if (multiMemory) pos = afterLeb(b, pos, end);
  return afterLeb(b, pos, end);
}

/** Walks a function body's instructions from `pos`; returns the first refused one with its offset. */
function walkBody(b: Uint8Array, pos: number, end: number): (ReturnType<typeof instruction> & { offset: number }) | null {
  const r = new Reader(b, pos, end);
  while (pos < end) {
    const kind = KIND[b[pos] as number];
    if (kind === NONE) pos++;
    else if (kind === LEB) pos = afterLeb(b, pos + 1, end);
    else if (kind === MEMARG) pos = afterMemarg(b, pos + 1, end);
    else {
      r.pos = pos;
      const found = instruction(r);
      if (found) return { ...found, offset: pos };
      pos = r.pos;
    }
  }
  return null;
}

function skipLeb(r: Reader): void {
  r.pos = afterLeb(r.bytes, r.pos, r.end);
}

/** A block type: empty (0x40), a value type, or a type index (s33). */
function skipBlockType(r: Reader): void {
  const b = r.bytes[r.pos];
  if (b === undefined || r.pos >= r.end) throw new Unreadable();
  if (b === 0x63 || b === 0x64) {
    r.pos++;
    skipLeb(r);
  } else skipLeb(r);
}

function skipValType(r: Reader): void {
  const b = r.byte();
  if (b === 0x63 || b === 0x64) skipLeb(r);
}

function skipMemarg(r: Reader): void {
  r.pos = afterMemarg(r.bytes, r.pos, r.end);
}

function skip(r: Reader, n: number): void {
  if (r.pos + n > r.end) throw new Unreadable();
  r.pos += n;
}

/** Reads one instruction of kind OTHER at `r.pos` (walkBody skips the rest); returns what is refused about it, or null. */
function instruction(r: Reader): { reason: RefusedInstruction["reason"]; instruction: string } | null {
  const at = r.pos;
  const op = r.byte();
  switch (op) {
    case 0x02:
    case 0x03:
    case 0x04:
    case 0x06:
      skipBlockType(r);
      return null;
    case 0x0e: {
      const n = r.u32();
      for (let i = 0; i <= n; i++) skipLeb(r);
      return null;
    }
    case 0x11:
    case 0x13:
      skipLeb(r);
      skipLeb(r);
      return null;
    case 0x1c: {
      const n = r.u32();
      for (let i = 0; i < n; i++) skipValType(r);
      return null;
    }
    case 0x1f: {
      skipBlockType(r);
      const n = r.u32();
      for (let i = 0; i < n; i++) {
        const kind = r.byte();
        if (kind <= 1) skipLeb(r);
        skipLeb(r);
      }
      return null;
    }
    case 0x43:
      skip(r, 4);
      return null;
    case 0x44:
      skip(r, 8);
      return null;
    case 0xd0:
      skipBlockType(r); // a heap type: a one-byte abstract type or a type index, as a block type's
      return null;
    case 0xfc:
      return miscPrefixed(r, at);
    case 0xfd:
      return simdPrefixed(r);
    case 0xfe:
      return atomicPrefixed(r, at);
    default:
      return { reason: "unknown", instruction: hexAt(r, at) };
  }
}

function miscPrefixed(r: Reader, at: number): ReturnType<typeof instruction> {
  const sub = r.u32();
  if (sub <= 7) return null;
  const immediates = sub === 8 || sub === 10 || sub === 12 || sub === 14 ? 2 : sub === 9 || sub === 11 || sub === 13 || (sub >= 15 && sub <= 17) ? 1 : -1;
  if (immediates < 0) return { reason: "unknown", instruction: hexAt(r, at) };
  for (let i = 0; i < immediates; i++) skipLeb(r);
  return null;
}

function simdPrefixed(r: Reader): ReturnType<typeof instruction> {
  const sub = r.u32();
  if (sub <= 0x0b || sub === 0x5c || sub === 0x5d) skipMemarg(r);
  else if (sub === 0x0c || sub === 0x0d) skip(r, 16);
  else if (sub >= 0x15 && sub <= 0x22) skip(r, 1);
  else if (sub >= 0x54 && sub <= 0x5b) {
    skipMemarg(r);
    skip(r, 1);
  }
  if (sub >= RELAXED_SIMD_FIRST && sub <= RELAXED_SIMD_LAST) {
    return { reason: "relaxed_simd", instruction: RELAXED_SIMD_NAMES[sub - RELAXED_SIMD_FIRST] as string };
  }
  // Every other sub-opcode below the relaxed range is a fixed-width SIMD operation with no immediate.
  if (sub < RELAXED_SIMD_FIRST) return null;
  return { reason: "unknown", instruction: `0xfd ${sub.toString(16)}` };
}

function atomicPrefixed(r: Reader, at: number): ReturnType<typeof instruction> {
  const sub = r.u32();
  if (sub === 0x03) skip(r, 1);
  else if (sub <= 0x02 || (sub >= 0x10 && sub <= 0x4e)) skipMemarg(r);
  else return { reason: "unknown", instruction: hexAt(r, at) };
  return null;
}

function hexAt(r: Reader, at: number): string {
  return Array.from(r.bytes.subarray(at, Math.min(at + 2, r.end)), (b) => `0x${b.toString(16).padStart(2, "0")}`).join(" ");
}

/** The number of imported functions (they come first in the function index space). */
function importedFunctions(bytes: Uint8Array, bodyStart: number, end: number): number {
  const r = new Reader(bytes, bodyStart, end);
  let functions = 0;
  const n = r.u32();
  for (let i = 0; i < n; i++) {
    skip(r, r.u32()); // module
    skip(r, r.u32()); // name
    const kind = r.byte();
    if (kind === 0) {
      functions++;
      skipLeb(r);
    } else if (kind === 1) {
      skipValType(r);
      r.limits();
    } else if (kind === 2) r.limits();
    else if (kind === 3) {
      skipValType(r);
      r.byte();
    } else if (kind === 4) {
      r.byte();
      skipLeb(r);
    } else throw new Unreadable();
  }
  return functions;
}

/** The function's name from the "name" custom section's function names, if any. */
function functionName(bytes: Uint8Array, index: number): string | null {
  try {
    for (const s of sections(bytes)) {
      if (s.id !== 0) continue;
      const r = new Reader(bytes, s.bodyStart, s.end);
      if (r.name() !== "name") continue;
      while (r.pos < s.end) {
        const id = r.byte();
        const size = r.u32();
        const next = r.pos + size;
        if (id === 1) {
          const n = r.u32();
          for (let i = 0; i < n; i++) {
            const idx = r.u32();
            const name = r.name();
            if (idx === index) return name;
          }
        }
        r.pos = next;
      }
    }
  } catch {
    // A malformed name section names nothing.
  }
  return null;
}

/**
 * The first instruction igord refuses in the module's code, or null when there is none (or the
 * bytes cannot be read this far: WebAssembly.validate then explains them).
 */
export function findRefusedInstruction(bytes: Uint8Array): RefusedInstruction | null {
  try {
    const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    let imported = 0;
    for (const s of sections(bytes)) {
      if (s.end > bytes.length) throw new Unreadable();
      if (s.id === 2) imported = importedFunctions(bytes, s.bodyStart, s.end);
      if (s.id !== 10) continue;
      let suspect = nextSuspect(view, s.bodyStart, s.end);
      if (suspect < 0) return null;
      const r = new Reader(bytes, s.bodyStart, s.end);
      const count = r.u32();
      for (let i = 0; i < count && suspect >= 0; i++) {
        const size = r.u32();
        const body = new Reader(bytes, r.pos, r.pos + size);
        if (body.end > s.end) throw new Unreadable();
        r.pos = body.end;
        if (suspect >= body.end) continue;
        const locals = body.u32();
        for (let l = 0; l < locals; l++) {
          skipLeb(body);
          skipValType(body);
        }
        const found = walkBody(bytes, body.pos, body.end);
        if (found) {
          const functionIndex = imported + i;
          return { ...found, functionIndex, functionName: functionName(bytes, functionIndex) };
        }
        suspect = nextSuspect(view, body.end, s.end);
      }
    }
    return null;
  } catch {
    return null;
  }
}

/**
 * The offset of the next 0xFD byte in [from, end) followed by a byte 0x80–0x93, or -1. A relaxed
 * SIMD instruction is 0xFD then its sub-opcode (0x100–0x113) as a LEB128 number, whose first byte is
 * the low seven bits with the continuation bit (however many bytes the encoding pads it to): a
 * function with no such pair holds none, and is not walked. Most modules have none at all.
 */
function nextSuspect(view: Buffer, from: number, end: number): number {
  for (let at = view.indexOf(0xfd, from); at >= 0 && at < end - 1; at = view.indexOf(0xfd, at + 1)) {
    const next = view[at + 1] as number;
    if (next >= 0x80 && next <= 0x80 + (RELAXED_SIMD_LAST & 0x7f)) return at;
  }
  return -1;
}

/** What an author reads when a module is refused for `f`. */
export function describeRefusedInstruction(f: RefusedInstruction): string {
  const where = `function ${f.functionIndex}${f.functionName ? ` (${f.functionName})` : ""} at byte ${f.offset}`;
  return f.reason === "relaxed_simd"
    ? `uses relaxed SIMD (${f.instruction} in ${where}), whose results depend on the CPU, so its ticks could not be replayed exactly or run the same on another node; build without relaxed SIMD (e.g. no -mrelaxed-simd, no --enable relaxed-simd)`
    : `uses an instruction igord does not know (${f.instruction} in ${where}) in a function that may also use relaxed SIMD, so it cannot tell whether its ticks replay exactly`;
}
