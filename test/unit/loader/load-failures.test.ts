import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { IgordError } from "../../../src/errors.js";
import { LoadFailures, MAX_LOAD_FAILURES } from "../../../src/loader/load-failures.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function files(n: number): string[] {
  const dir = mkdtempSync(join(tmpdir(), "igord-lf-"));
  dirs.push(dir);
  return Array.from({ length: n }, (_, i) => {
    const p = join(dir, `a${i}.wasm`);
    writeFileSync(p, "x");
    return p;
  });
}

describe("failed loads", () => {
  it("keep at most MAX_LOAD_FAILURES paths, dropping the oldest, and a path once", () => {
    const f = new LoadFailures();
    const paths = files(MAX_LOAD_FAILURES + 2);
    for (const p of paths) f.record(p, "a", new IgordError("WASM_MALFORMED", `${p} is bad`));
    f.record(paths.at(-1)!, "a", new IgordError("WASM_MALFORMED", "again"));
    const listed = f.list();
    expect(listed).toHaveLength(MAX_LOAD_FAILURES);
    expect(listed.map((l) => l.path)).not.toContain(paths[0]);
    expect(listed.map((l) => l.path)).not.toContain(paths[1]);
    expect(listed.find((l) => l.path === paths.at(-1))?.message).toBe("again");
  });

  it("a path is forgotten when it loads or when its file is gone; an error without a code is INTERNAL", () => {
    const f = new LoadFailures();
    const [a, b, c] = files(3) as [string, string, string];
    f.record(a, "a", new IgordError("WASM_MALFORMED", "bad"));
    f.record(b, "b", new Error("boom"));
    f.record(c, "c", new IgordError("WASM_MALFORMED", "bad"));
    f.clear(a);
    rmSync(c);
    expect(f.list().map((l) => [l.path, l.code])).toEqual([[b, "INTERNAL"]]);
    expect(f.size).toBe(1);
  });
});
