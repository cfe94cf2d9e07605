#!/usr/bin/env node
// Bundles src/p2p/libp2p-modules.ts and every package it imports into dist/p2p/libp2p-modules.js
// (replacing tsc's re-exporting file), so a listening node loads libp2p as one module instead of
// ~325: Node's ESM loader resolves and links modules one by one, which was most of libp2p's import
// time. Run by `npm run build:ts`, after tsc. Rolldown is the bundler vitest's vite already brings.
import { rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { rolldown } from "rolldown";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const INPUT = join(ROOT, "src", "p2p", "libp2p-modules.ts");
const OUTPUT = join(ROOT, "dist", "p2p", "libp2p-modules.js");

const bundle = await rolldown({ input: INPUT, platform: "node", logLevel: "warn" });
try {
  const partial = `${OUTPUT}.partial`;
  const out = await bundle.write({ file: partial, format: "esm", codeSplitting: false, sourcemap: false });
  if (out.output.length !== 1) throw new Error(`expected one bundled file, got ${out.output.length}`);
  // tsc's source map describes the file this replaces.
  await rm(`${OUTPUT}.map`, { force: true });
  await rename(partial, OUTPUT);
} finally {
  await bundle.close();
}
