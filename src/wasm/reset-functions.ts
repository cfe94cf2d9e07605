// The bodies of the two functions wasm/reset-exports.ts adds to an agent module, and the shadow
// globals and tables they copy through. `igord.save` runs once, on a replay instance just
// initialised; `igord.restore` puts that image back before each reuse (replay/instance-pool.ts).
// The copies are wasm's own global.get/global.set and table.copy, so every value comes back bit for
// bit, whatever its type.
import { leb } from "./module-info.js";

export interface ResetLayout {
  /** The module's mutable globals: index in the global index space, value type byte. */
  globals: { index: number; type: number }[];
  /** The module's defined tables (none imported): index, reference type byte. */
  tables: { index: number; type: number }[];
  /** Whether the module has a memory (its page count is saved and checked too). */
  memory: boolean;
  /** Index of the first added global (the global index space's end before the additions). */
  shadowGlobalBase: number;
  /** Index of the first added table. */
  shadowTableBase: number;
}

const OP = {
  end: 0x0b,
  return: 0x0f,
  if: 0x04,
  emptyBlock: 0x40,
  drop: 0x1a,
  globalGet: 0x23,
  globalSet: 0x24,
  memorySize: 0x3f,
  i32Const: 0x41,
  i32Ne: 0x47,
  i32Sub: 0x6b,
  refNull: 0xd0,
  prefixFC: 0xfc,
  tableCopy: 14,
  tableGrow: 15,
  tableSize: 16,
} as const;

/** A zero constant expression of a global's type (the shadow's value until `igord.save` runs). */
function zeroInit(type: number): number[] {
  switch (type) {
    case 0x7f:
      return [OP.i32Const, 0, OP.end];
    case 0x7e:
      return [0x42, 0, OP.end];
    case 0x7d:
      return [0x43, 0, 0, 0, 0, OP.end];
    case 0x7c:
      return [0x44, 0, 0, 0, 0, 0, 0, 0, 0, OP.end];
    default:
      return [OP.refNull, type, OP.end];
  }
}

const tableSize = (t: number): number[] => [OP.prefixFC, OP.tableSize, ...leb(t)];
const tableCopy = (dst: number, src: number): number[] => [OP.i32Const, 0, OP.i32Const, 0, ...tableSize(src), OP.prefixFC, OP.tableCopy, ...leb(dst), ...leb(src)];

/**
 * Code (locals and instructions) of `igord.save` (() -> ()) and `igord.restore` (() -> i32), and the
 * encoded entries of the shadow globals and tables they use: one global per mutable global, one table
 * per table, and one i32 global for the memory's page count after the save.
 */
export function resetFunctionBodies(l: ResetLayout): { save: number[]; restore: number[]; shadowGlobals: number[][]; shadowTables: number[][] } {
  const shadowGlobals = l.globals.map((g) => [g.type, 1, ...zeroInit(g.type)]);
  const pagesGlobal = l.shadowGlobalBase + l.globals.length;
  if (l.memory) shadowGlobals.push([0x7f, 1, ...zeroInit(0x7f)]);
  const shadowTables = l.tables.map((t) => [t.type, 0, 0]);
  const save: number[] = [0];
  const restore: number[] = [0];
  // Restore refuses (returns 0, changes nothing) when a size moved: tables and memory cannot shrink.
  const refuseIf = (...differs: number[]): void => {
    restore.push(...differs, OP.i32Ne, OP.if, OP.emptyBlock, OP.i32Const, 0, OP.return, OP.end);
  };
  if (l.memory) {
    save.push(OP.memorySize, 0, OP.globalSet, ...leb(pagesGlobal));
    refuseIf(OP.memorySize, 0, OP.globalGet, ...leb(pagesGlobal));
  }
  l.tables.forEach((t, i) => {
    const shadow = l.shadowTableBase + i;
    // The shadow starts empty: grown once to the table's size, then filled.
    save.push(OP.refNull, t.type, ...tableSize(t.index), ...tableSize(shadow), OP.i32Sub, OP.prefixFC, OP.tableGrow, ...leb(shadow), OP.drop);
    save.push(...tableCopy(shadow, t.index));
    refuseIf(...tableSize(t.index), ...tableSize(shadow));
  });
  l.tables.forEach((t, i) => restore.push(...tableCopy(t.index, l.shadowTableBase + i)));
  l.globals.forEach((g, i) => {
    save.push(OP.globalGet, ...leb(g.index), OP.globalSet, ...leb(l.shadowGlobalBase + i));
    restore.push(OP.globalGet, ...leb(l.shadowGlobalBase + i), OP.globalSet, ...leb(g.index));
  });
  save.push(OP.end);
  restore.push(OP.i32Const, 1, OP.end);
  return { save, restore, shadowGlobals, shadowTables };
}
