// Reads what igord needs from a WebAssembly binary without instantiating it: imports and exports with
// their signatures, and the declared memory limits. Also rewrites the memory section so a module
// cannot grow past its manifest's cap. Call only on bytes that WebAssembly.validate accepted.

export type ValueType = "i32" | "i64" | "f32" | "f64" | "v128" | "funcref" | "externref";

export interface FuncType {
  params: ValueType[];
  results: ValueType[];
}

export interface MemoryLimits {
  initialPages: number;
  maximumPages: number | null;
  shared: boolean;
  memory64: boolean;
}

export interface ImportInfo {
  module: string;
  name: string;
  kind: "function" | "table" | "memory" | "global" | "tag";
  /** For functions: the signature (null when the type section uses encodings we do not read). */
  type: FuncType | null;
  memory?: MemoryLimits;
}

export interface ExportInfo {
  name: string;
  kind: "function" | "table" | "memory" | "global" | "tag";
  type: FuncType | null;
}

export interface ModuleInfo {
  imports: ImportInfo[];
  exports: ExportInfo[];
  /** The module's own memory (section 5), if it defines one. */
  definedMemory: MemoryLimits | null;
  memoryCount: number;
  /** The module's own tables (section 4), in order; null when one is in an encoding this reader does not know. */
  definedTables: TableLimits[] | null;
}

export interface TableLimits {
  initial: number;
  maximum: number | null;
}

const VALTYPES: Record<number, ValueType> = {
  127: "i32",
  126: "i64",
  125: "f32",
  124: "f64",
  123: "v128",
  112: "funcref",
  111: "externref",
};
const KINDS = ["function", "table", "memory", "global", "tag"] as const;

export class Reader {
  pos: number;
  constructor(
    readonly bytes: Uint8Array,
    start = 0,
    readonly end = bytes.length,
  ) {
    this.pos = start;
  }
  byte(): number {
    if (this.pos >= this.end) throw new Error("unexpected end of module");
    return this.bytes[this.pos++] as number;
  }
  u32(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
      if (shift > 63) throw new Error("LEB128 value too long");
    }
  }
  name(): string {
    const len = this.u32();
    const s = new TextDecoder().decode(this.bytes.subarray(this.pos, this.pos + len));
    this.pos += len;
    return s;
  }
  limits(): MemoryLimits {
    const flags = this.byte();
    const initialPages = this.u32();
    const maximumPages = flags & 0x01 ? this.u32() : null;
    return { initialPages, maximumPages, shared: (flags & 0x02) !== 0, memory64: (flags & 0x04) !== 0 };
  }
}

export interface Section {
  id: number;
  /** Offset of the section id byte. */
  start: number;
  bodyStart: number;
  end: number;
}

export function sections(bytes: Uint8Array): Section[] {
  const out: Section[] = [];
  const r = new Reader(bytes, 8);
  while (r.pos < bytes.length) {
    const start = r.pos;
    const id = r.byte();
    const size = r.u32();
    out.push({ id, start, bodyStart: r.pos, end: r.pos + size });
    r.pos += size;
  }
  return out;
}

export function readModuleInfo(bytes: Uint8Array): ModuleInfo {
  let types: (FuncType | null)[] = [];
  const funcTypes: (FuncType | null)[] = []; // function index space
  const imports: ImportInfo[] = [];
  const rawExports: { name: string; kind: number; index: number }[] = [];
  let definedMemory: MemoryLimits | null = null;
  let memoryCount = 0;
  let definedTables: TableLimits[] | null = [];

  for (const s of sections(bytes)) {
    const r = new Reader(bytes, s.bodyStart, s.end);
    if (s.id === 1) {
      types = readTypes(r);
    } else if (s.id === 2) {
      const n = r.u32();
      for (let i = 0; i < n; i++) {
        const module = r.name();
        const name = r.name();
        const kindByte = r.byte();
        const kind = KINDS[kindByte] ?? "function";
        const imp: ImportInfo = { module, name, kind, type: null };
        if (kindByte === 0) {
          imp.type = types[r.u32()] ?? null;
          funcTypes.push(imp.type);
        } else if (kindByte === 1) {
          r.byte();
          r.limits();
        } else if (kindByte === 2) {
          imp.memory = r.limits();
          memoryCount++;
        } else if (kindByte === 3) {
          r.byte();
          r.byte();
        } else if (kindByte === 4) {
          r.byte();
          r.u32();
        }
        imports.push(imp);
      }
    } else if (s.id === 3) {
      const n = r.u32();
      for (let i = 0; i < n; i++) funcTypes.push(types[r.u32()] ?? null);
    } else if (s.id === 4) {
      definedTables = readTables(r);
    } else if (s.id === 5) {
      const n = r.u32();
      memoryCount += n;
      if (n > 0) definedMemory = r.limits();
    } else if (s.id === 7) {
      const n = r.u32();
      for (let i = 0; i < n; i++) rawExports.push({ name: r.name(), kind: r.byte(), index: r.u32() });
    }
  }
  const exports: ExportInfo[] = rawExports.map((e) => ({
    name: e.name,
    kind: KINDS[e.kind] ?? "function",
    type: e.kind === 0 ? (funcTypes[e.index] ?? null) : null,
  }));
  return { imports, exports, definedMemory, memoryCount, definedTables };
}

/** funcref and externref tables with 32-bit limits; null for any other form (typed references, initialisers, 64-bit). */
function readTables(r: Reader): TableLimits[] | null {
  const out: TableLimits[] = [];
  const n = r.u32();
  for (let i = 0; i < n; i++) {
    const t = r.byte();
    if (t !== 0x70 && t !== 0x6f) return null;
    const flags = r.byte();
    if (flags !== 0 && flags !== 1) return null;
    const initial = r.u32();
    out.push({ initial, maximum: flags === 1 ? r.u32() : null });
  }
  return out;
}

/** The module with each table's maximum set to `maxima[i]` (its tables as readTables reads them). */
export function withTableMaxima(bytes: Uint8Array, maxima: readonly number[]): Uint8Array<ArrayBuffer> {
  return withSectionRewritten(bytes, 4, (r) => {
    const n = r.u32();
    const body: number[] = leb(n);
    for (let i = 0; i < n; i++) {
      const type = r.byte();
      const flags = r.byte();
      const initial = r.u32();
      if (flags === 1) r.u32();
      body.push(type, 1, ...leb(initial), ...leb(maxima[i] as number));
    }
    return body;
  });
}

/** The module with the body of its section `id` (a small one) replaced by what `rewrite` makes of it. */
function withSectionRewritten(bytes: Uint8Array, id: number, rewrite: (r: Reader) => number[]): Uint8Array<ArrayBuffer> {
  const parts: Uint8Array[] = [bytes.subarray(0, 8)];
  for (const s of sections(bytes)) {
    if (s.id !== id) {
      parts.push(bytes.subarray(s.start, s.end));
      continue;
    }
    const body = rewrite(new Reader(bytes, s.bodyStart, s.end));
    parts.push(Uint8Array.from([id, ...leb(body.length), ...body]));
  }
  return concatBytes(parts);
}

function readTypes(r: Reader): (FuncType | null)[] {
  const n = r.u32();
  const out: (FuncType | null)[] = [];
  for (let i = 0; i < n; i++) {
    const form = r.byte();
    if (form !== 0x60) return []; // GC-proposal type encodings: signatures stay unknown
    const params: ValueType[] = [];
    const results: ValueType[] = [];
    let ok = true;
    for (const list of [params, results]) {
      const count = r.u32();
      for (let j = 0; j < count; j++) {
        const t = VALTYPES[r.byte()];
        if (t === undefined) ok = false;
        else list.push(t);
      }
    }
    out.push(ok ? { params, results } : null);
  }
  return out;
}

export function leb(n: number): number[] {
  const out: number[] = [];
  let v = n;
  do {
    let b = v & 0x7f;
    v = Math.floor(v / 128);
    if (v !== 0) b |= 0x80;
    out.push(b);
  } while (v !== 0);
  return out;
}

/** Returns a copy of the module whose single defined memory has `maximum = capPages`. */
export function withMemoryMaximum(bytes: Uint8Array, capPages: number): Uint8Array<ArrayBuffer> {
  return withSectionRewritten(bytes, 5, (limits) => {
    limits.u32();
    const { initialPages } = limits.limits();
    return [1, 0x01, ...leb(initialPages), ...leb(capPages)];
  });
}

/** The parts (byte arrays, or small arrays of byte values) laid out in one new byte array. */
export function concatBytes(parts: readonly (Uint8Array | readonly number[])[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

export function formatFuncType(t: FuncType | null): string {
  if (t === null) return "(unknown)";
  return `(${t.params.join(", ")}) -> (${t.results.join(", ")})`;
}
