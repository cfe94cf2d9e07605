// docs/SDK.md cannot drift from the SDK: its reference is generated from agents/sdk and must be
// current, every exported symbol is described, and the examples import the SDK as an author does.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
// @ts-expect-error: a plain .mjs script without types
import * as sdkDocs from "../../../scripts/sdk-docs.mjs";
import { ROOT } from "../../helpers/node.js";

interface Symbol_ { name: string; kind: string; doc: string; members?: { sig: string; doc: string }[] }
interface Module_ { importFrom: string; file: string; symbols: Symbol_[] }
const docs = sdkDocs as {
  SDK_DOC: string;
  publicApi(): Module_[];
  renderReference(): string;
  withReference(doc: string, block: string): string;
  undocumented(api: Module_[], prose: string): string[];
  prose(doc: string): string;
};

const doc = readFileSync(docs.SDK_DOC, "utf8");

describe("docs/SDK.md", () => {
  it("holds the reference generated from the SDK's current source (npm run docs:sdk rewrites it)", () => {
    expect(docs.withReference(doc, docs.renderReference()), "docs/SDK.md is stale: run npm run docs:sdk").toBe(doc);
  });

  it("lists every symbol igord/sdk and igord/sdk/exports export", () => {
    const names = docs.publicApi().flatMap((m) => m.symbols.map((s) => s.name));
    for (const name of ["Agent", "register", "Encoder", "Decoder", "clockNow", "log", "emit", "EffectLog", "Intent", "IntentState", "EFFECT_OK", "EFFECT_EXISTS", "EFFECT_NOT_FOUND", "EFFECT_INVALID_TRANSITION", "agent_tick", "agent_resume", "malloc"]) {
      expect(names).toContain(name);
    }
    for (const name of names) expect(doc).toContain(`#### \`${name}\``);
  });

  it("describes every exported symbol and public member, by doc comment or in the prose", () => {
    const missing = docs.undocumented(docs.publicApi(), docs.prose(doc));
    expect(missing, "give each a /** doc comment */ in agents/sdk (then npm run docs:sdk), or name it in SDK.md's prose").toEqual([]);
  });

  it("reports a symbol that has neither a doc comment nor a mention", () => {
    const api: Module_[] = [
      { importFrom: "igord/sdk", file: "x.ts", symbols: [{ name: "quietFn", kind: "function", doc: "" }, { name: "Box", kind: "class", doc: "A box.", members: [{ sig: "open(): void", doc: "" }, { sig: "get size(): i32", doc: "Its size." }] }] },
    ];
    expect(docs.undocumented(api, "")).toEqual(["quietFn", "Box.open"]);
    expect(docs.undocumented(api, "call `quietFn()` then `Box.open()`")).toEqual([]);
  });
});

describe("the example agents", () => {
  it("import the SDK by package name (igord/sdk), as a project made by igord new does", () => {
    const dir = join(ROOT, "agents", "src");
    for (const file of readdirSync(dir).filter((f) => f.endsWith(".ts"))) {
      const specifiers = [...readFileSync(join(dir, file), "utf8").matchAll(/from "([^"]+)"/g)].map((m) => m[1]);
      expect(specifiers.length, file).toBeGreaterThan(0);
      expect(specifiers.filter((s) => !s!.startsWith("igord/sdk")), file).toEqual([]);
    }
  });
});
