// Builds the AssemblyScript example agents and test fixtures once before the suite.
import { execFileSync } from "node:child_process";

export default function setup(): void {
  execFileSync(process.execPath, ["scripts/build-agents.mjs", "--fixtures"], { stdio: "inherit" });
}
