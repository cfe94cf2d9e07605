// An agent's sandbox in the test's own thread (no worker, no watchdog), its observations recorded
// live: for tests of what one hostcall does with guest memory.
import { LiveRecorder } from "../../src/eventlog/recorder.js";
import { planImports } from "../../src/hostcalls/policy.js";
import { parseManifest } from "../../src/manifest/manifest.js";
import { readModuleInfo } from "../../src/wasm/module-info.js";
import { AgentSandbox } from "../../src/wasm/sandbox.js";
import { CAPS, wat2wasm } from "./wat.js";

/** Instantiates `wat` granted `caps` (agent_init run), with a clock at 0 and no randomness. */
export async function inProcessSandbox(wat: string, caps: string[], memoryCapPages = 1024): Promise<{ sb: AgentSandbox; rec: LiveRecorder }> {
  const bytes = await wat2wasm(wat);
  const rec = new LiveRecorder();
  const sb = AgentSandbox.instantiate({
    module: new WebAssembly.Module(bytes),
    plan: planImports(readModuleInfo(bytes), parseManifest(JSON.stringify(CAPS(...caps))), new Set(caps), "did:key:z6MkAgentA"),
    memoryCapPages,
    context: { source: rec, budget: () => 1n, price: () => 1n, authority: () => true, world: { nowNs: () => 0n, randomFill: () => undefined } },
  });
  sb.init();
  return { sb, rec };
}

/** The IgordError (or anything) `fn` throws; undefined when it returns. */
export function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}
