// The lint rule that keeps the daemon's byte-array sizes on `length` (eslint-rules/byte-array-length.js):
// it must flag a Uint8Array's or a Buffer's `byteLength`, fix it to `length`, and leave alone the
// reads where the two differ or `length` does not exist (an ArrayBuffer, a DataView, a Uint32Array).
import { fileURLToPath } from "node:url";
import { ESLint } from "eslint";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const RULE = "igord/byte-array-length";

/** A file under src/ (where the rule applies) that does not exist: the project service types it in its default project. */
const PROBE = "src/lint-rule-probe.ts";
const overrideConfig = { files: [PROBE], languageOptions: { parserOptions: { projectService: { allowDefaultProject: [PROBE] }, tsconfigRootDir: root } } };

/** The columns the rule flags in `code` (linted with the repository's config), and the text its fixes give. */
async function lint(code: string): Promise<{ flagged: number[]; fixed: string | undefined }> {
  const filePath = `${root}${PROBE}`;
  const [reported] = await new ESLint({ cwd: root, overrideConfig }).lintText(code, { filePath });
  const [fixed] = await new ESLint({ cwd: root, overrideConfig, fix: true }).lintText(code, { filePath });
  const fatal = reported?.messages.find((m) => m.fatal);
  if (fatal) throw new Error(`lint could not parse the probe: ${fatal.message}`);
  const flagged = (reported?.messages ?? []).filter((m) => m.ruleId === RULE).map((m) => m.column);
  return { flagged, fixed: fixed?.output };
}

describe("lint rule igord/byte-array-length", () => {
  it("flags a Uint8Array's and a Buffer's byteLength, and fixes each to length", async () => {
    const code = [
      "export function sizes(a: Uint8Array, b: Buffer, c?: Uint8Array | null): number {",
      "  return a.byteLength + b.byteLength + (c?.byteLength ?? 0);",
      "}",
      "",
    ].join("\n");
    const { flagged, fixed } = await lint(code);
    expect(flagged).toEqual([12, 27, 44]);
    expect(fixed).toBe(code.replaceAll(".byteLength", ".length"));
  }, 60_000);

  it("leaves an ArrayBuffer's, a DataView's, a Uint32Array's and Buffer.byteLength(string) alone", async () => {
    const code = [
      "export function sizes(a: ArrayBuffer, d: DataView, w: Uint32Array, s: string): number {",
      "  return a.byteLength + d.byteLength + w.byteLength + Buffer.byteLength(s);",
      "}",
      "",
    ].join("\n");
    const { flagged, fixed } = await lint(code);
    expect(flagged).toEqual([]);
    expect(fixed).toBeUndefined();
  }, 60_000);
});
