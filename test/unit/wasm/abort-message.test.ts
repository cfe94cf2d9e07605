// An AssemblyScript abort names its message and file: text the guest chooses, as long as its memory
// allows (64 MiB). The error that carries it goes to the main thread, the log, the agent's status
// and the control API, so the guest's text in it is cut to a named limit.
import { describe, expect, it } from "vitest";
import { ErrorCode, IgordError } from "../../../src/errors.js";
import { MAX_ABORT_TEXT_CHARS, toAgentError } from "../../../src/wasm/sandbox.js";
import { inProcessSandbox, thrownBy } from "../../helpers/sandbox.js";
import { watAgent } from "../../helpers/wat.js";

describe("an agent's abort", () => {
  it("a 16 MiB message and file name are cut to MAX_ABORT_TEXT_CHARS in the AGENT_ABORT error; its code, line and column are kept", async () => {
    // One AssemblyScript string of 8 Mi characters (zeros) at 65536, its byte length at 65532: message and file.
    const wat = watAgent({
      imports: '(import "env" "abort" (func $abort (param i32 i32 i32 i32)))',
      memory: '(memory (export "memory") 260)',
      onTick: `(i32.store (i32.const 65532) (i32.const ${16 * 1024 * 1024}))
        (call $abort (i32.const 65536) (i32.const 65536) (i32.const 7) (i32.const 9))`,
    });
    const { sb } = await inProcessSandbox(wat, []);
    const err = thrownBy(() => sb.tick());
    expect(err instanceof IgordError && err.code).toBe(ErrorCode.AgentAbort);
    const e = err as IgordError;
    expect(e.message.length).toBeLessThan(3 * MAX_ABORT_TEXT_CHARS);
    expect(String(e.details.abortMessage).length).toBeLessThanOrEqual(MAX_ABORT_TEXT_CHARS + 1);
    expect(String(e.details.file).length).toBeLessThanOrEqual(MAX_ABORT_TEXT_CHARS + 1);
    expect(e.details).toMatchObject({ line: 7, column: 9, during: "agent_tick" });
  });

  it("an uncaught WebAssembly exception is named as one in its AGENT_TRAP (it read '[object WebAssembly.Exception]')", () => {
    // Node's WebAssembly has Tag and Exception (exception handling); TypeScript's lib does not declare them yet.
    const W = WebAssembly as unknown as { Tag: new (t: { parameters: string[] }) => object; Exception: new (tag: object, payload: unknown[]) => unknown };
    const err = toAgentError(new W.Exception(new W.Tag({ parameters: [] }), []), "agent_tick");
    expect(err.code).toBe(ErrorCode.AgentTrap);
    expect(err.message).toBe("agent trapped during agent_tick: an uncaught WebAssembly exception (throw without a catch)");
  });
});
