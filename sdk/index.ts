// The AssemblyScript SDK by package name: `import { Agent, register } from "igord/sdk"`.
// asc resolves "igord/sdk" to node_modules/igord/sdk/index.ts; the SDK's code lives in agents/sdk/.
// Reference: docs/SDK.md.
export * from "../agents/sdk/index";
