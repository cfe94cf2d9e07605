// An export carries when its head's tick committed (`<agent>.last-tick.json`), so the importing node
// ticks the agent when its cadence says. The file is not signed: import reads it only if it names the
// export's head tick and a time, and refuses the folder (EXPORT_FOLDER_INVALID, naming the file) else.
import { symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { lastTickFileName, lastTickFileText, readLastTickAt } from "../../../src/cli/export-folder.js";
import { ErrorCode, IgordError } from "../../../src/errors.js";
import { tempDir } from "../../helpers/node.js";

function folderWith(text: string): string {
  const dir = tempDir();
  writeFileSync(join(dir, lastTickFileName("hb")), text);
  return dir;
}

function refusal(dir: string): IgordError {
  try {
    readLastTickAt(dir, "hb", 12n);
  } catch (e) {
    if (e instanceof IgordError) return e;
    throw e;
  }
  throw new Error("not refused");
}

describe("an export's last tick time", () => {
  it("reads back what export writes, to the millisecond", () => {
    const at = Date.UTC(2026, 11, 2, 5, 16, 33, 417);
    expect(readLastTickAt(folderWith(lastTickFileText(12n, at)), "hb", 12n)).toBe(at);
  });

  it("is unknown (null) when the export has no such file", () => {
    expect(readLastTickAt(tempDir(), "hb", 12n)).toBeNull();
  });

  it("refuses a file naming another tick than the export's checkpoint", () => {
    const e = refusal(folderWith(lastTickFileText(11n, Date.now())));
    expect(e.code).toBe(ErrorCode.ExportFolderInvalid);
    expect(e.message).toBe(`hb.last-tick.json: names tick "11", but the export's checkpoint is at tick 12`);
  });

  it("refuses a file that is not JSON, has no time, or a time before 1970", () => {
    for (const [text, why] of [
      ["{", /^hb\.last-tick\.json: not JSON/],
      ['{"tick":"12"}', /^hb\.last-tick\.json: "at" must be a time \(ISO 8601\) after 1970, not undefined$/],
      ['{"tick":"12","at":"yesterday"}', /"at" must be a time/],
      ['{"tick":"12","at":"1969-12-31T23:59:59.000Z"}', /"at" must be a time/],
      ['[1,2]', /names tick undefined/],
    ] as const) {
      const e = refusal(folderWith(text));
      expect(e.code).toBe(ErrorCode.ExportFolderInvalid);
      expect(e.message).toMatch(why);
    }
  });

  it("never reads it through a link (export writes none)", () => {
    const dir = tempDir();
    const elsewhere = join(dir, "elsewhere.json");
    writeFileSync(elsewhere, lastTickFileText(12n, Date.now()));
    symlinkSync(elsewhere, join(dir, lastTickFileName("hb")));
    expect(() => readLastTickAt(dir, "hb", 12n)).toThrow(/link/);
  });
});
