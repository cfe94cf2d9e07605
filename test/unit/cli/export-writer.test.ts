// `igord export` writes into a folder it checked was empty; whatever appears there between that check
// and a write (a link to a file elsewhere, a file) must never be written through or over: each file
// is created new (O_EXCL) and each folder made new, else the export stops with EXPORT_PATH_TAKEN.
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ExportWriter } from "../../../src/cli/export-folder.js";
import { ErrorCode, isIgordError } from "../../../src/errors.js";
import { tempDir } from "../../helpers/node.js";

function codeOf(fn: () => void): string | null {
  try {
    fn();
    return null;
  } catch (e) {
    return isIgordError(e) ? e.code : `not an IgordError: ${String(e)}`;
  }
}

describe("an export's writer", () => {
  it("never writes through a link put at a file's path meanwhile: refused EXPORT_PATH_TAKEN, the link's target unchanged", () => {
    const root = tempDir();
    const out = join(root, "out");
    const victim = join(root, "victim");
    writeFileSync(victim, "keep me");
    const w = new ExportWriter(out);
    symlinkSync(victim, join(out, "a.checkpoint"));
    expect(codeOf(() => w.file(["a.checkpoint"], new Uint8Array([1, 2, 3])))).toBe(ErrorCode.ExportPathTaken);
    expect(readFileSync(victim, "utf8")).toBe("keep me");
    // A link to nothing is not followed to create its target either.
    symlinkSync(join(root, "created-elsewhere"), join(out, "a.wasm"));
    expect(codeOf(() => w.file(["a.wasm"], new Uint8Array([1])))).toBe(ErrorCode.ExportPathTaken);
    expect(() => statSync(join(root, "created-elsewhere"))).toThrow();
  });

  it("never makes its folders through a link: a link put where history/ goes is refused, nothing lands in its target", () => {
    const root = tempDir();
    const out = join(root, "out");
    const elsewhere = join(root, "elsewhere");
    mkdirSync(elsewhere);
    const w = new ExportWriter(out);
    symlinkSync(elsewhere, join(out, "history"));
    expect(codeOf(() => w.dir(["history"]))).toBe(ErrorCode.ExportPathTaken);
  });

  it("writes new files and folders, the identity owner-only", () => {
    const out = join(tempDir(), "out");
    const w = new ExportWriter(out);
    w.dir(["history"]);
    w.file(["history", "x.ckpt"], new Uint8Array([7]));
    w.file(["a.identity"], new Uint8Array([1]), 0o600);
    expect([...readFileSync(join(out, "history", "x.ckpt"))]).toEqual([7]);
    expect(statSync(join(out, "a.identity")).mode & 0o777).toBe(0o600);
  });

  it("an export that fails removes what it made and only that: the folders mkdir made for it, its files, never a file put among them", () => {
    const root = tempDir();
    const out = join(root, "a", "b", "out");
    const failing = (): void => {
      throw new Error("cut off");
    };
    expect(() =>
      ExportWriter.into(out, (w) => {
        w.dir(["history"]);
        w.file(["history", "x.ckpt"], new Uint8Array([7]));
        w.dir(["events"]);
        writeFileSync(join(out, "events", "someone-elses"), "keep me");
        failing();
      }),
    ).toThrow("cut off");
    // The folder holding another's file stays, with it, and so do the folders above it.
    expect(readFileSync(join(out, "events", "someone-elses"), "utf8")).toBe("keep me");
    expect(readdirSync(out)).toEqual(["events"]);
    // Without it, everything the export made goes, up to the first folder it made.
    const clean = join(root, "c", "d");
    expect(() => ExportWriter.into(clean, (w) => (w.file(["a.wasm"], new Uint8Array([1])), failing()))).toThrow("cut off");
    expect(existsSync(join(root, "c"))).toBe(false);
    // A folder that was there (empty) stays, emptied.
    const given = join(root, "given");
    mkdirSync(given);
    expect(() => ExportWriter.into(given, (w) => (w.file(["a.wasm"], new Uint8Array([1])), failing()))).toThrow("cut off");
    expect(readdirSync(given)).toEqual([]);
  });
});
