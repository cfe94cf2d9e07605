// The files of an AssemblyScript agent project (igord new <name>).
import type { ProjectContext } from "./new-project.js";
import { ASC_FLAGS } from "./new-project.js";
import { commonFiles, json } from "./templates-common.js";

export function asTemplates(c: ProjectContext): Record<string, string> {
  const n = c.name;
  return {
    ...commonFiles(c, {
      build: "node build.mjs",
      sources: ["assembly"],
      devDependencies: { assemblyscript: c.ascVersion, vitest: c.vitestVersion },
      // Agent.marshal's first field, after the SDK's two header bytes (state format, initialized).
      counterOffset: 2,
    }),
    "build.mjs": `// Builds build/${n}.wasm from assembly/index.ts and puts ${n}.manifest.json next to it (igord loads
// <name>.wasm with <name>.manifest.json from the same folder). The flags are igord's: -O3, no
// assertion traps, and the incremental runtime, which frees memory by itself, deterministically.
import { copyFileSync, mkdirSync } from "node:fs";
import asc from "assemblyscript/asc";

const ASC_FLAGS = ${JSON.stringify(ASC_FLAGS)};

mkdirSync("build", { recursive: true });
const { error, stderr } = await asc.main(["assembly/index.ts", ...ASC_FLAGS, "-o", "build/${n}.wasm"]);
if (error) {
  process.stderr.write(stderr.toString());
  process.exit(1);
}
copyFileSync("${n}.manifest.json", "build/${n}.manifest.json");
console.log("built build/${n}.wasm");
`,
    "assembly/index.ts": `// ${n}: an igord agent. It counts its ticks and remembers when it was born; both are in its
// checkpoint, so it carries on where it was after a restart or a migration.
// The SDK reference is igord's docs/SDK.md.
import { Agent, Encoder, Decoder, register, clockNow, log } from "igord/sdk";
export * from "igord/sdk/exports";

class ${c.className} extends Agent {
  ticks: u64 = 0;
  bornNs: i64 = 0;

  // Once in the agent's life, inside its first tick: its observations are recorded like any tick's.
  init(): void {
    this.bornNs = clockNow();
    log("${n}: born");
  }

  // One unit of work. Observe the world only through the SDK (clockNow, randBytes...): every answer
  // is recorded, so igord can replay the tick and check it gives the same state.
  tick(): bool {
    this.ticks++;
    log("${n}: tick " + this.ticks.toString());
    return false; // true = more work pending: tick again soon
  }

  // The whole state, in order. Add new fields at the end.
  marshal(enc: Encoder): void {
    enc.u64(this.ticks).i64(this.bornNs);
  }

  // Exactly what marshal wrote, and nothing else: marshal after unmarshal must give the same bytes.
  unmarshal(dec: Decoder): void {
    this.ticks = dec.u64();
    this.bornNs = dec.i64();
  }
}

register(new ${c.className}());
`,
    "assembly/tsconfig.json": json({ extends: "assemblyscript/std/assembly.json", include: ["./**/*.ts"] }),
  };
}
