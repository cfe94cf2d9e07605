// A byte array's size is its `length`, not its `byteLength`. On Node 20's V8 (11.3) TurboFan does
// not inline the `byteLength` getter of a typed array: each read is an inline-cache call, ~9 ns
// against ~1 ns for `length`, and the checkpoint path read it a few hundred times a checkpoint
// (docs/BENCHMARKS.md, "a typed array's `byteLength` is a call on Node 20"). For a Uint8Array or a
// Buffer the two are the same number; an ArrayBuffer, a DataView or a wider typed array keeps
// `byteLength`. Needs type information.
import ts from "typescript";

const BYTE_ARRAYS = new Set(["Uint8Array", "Uint8ClampedArray", "Buffer"]);

/** Whether every non-nullish member of `t` is a byte array (or a type extending one). */
function isByteArray(checker, t) {
  if (t.isUnion()) return t.types.every((m) => m.flags & (ts.TypeFlags.Null | ts.TypeFlags.Undefined) || isByteArray(checker, m));
  const symbol = t.getSymbol() ?? t.aliasSymbol;
  if (!symbol) return false;
  if (BYTE_ARRAYS.has(symbol.getName())) return true;
  return t.isClassOrInterface() && checker.getBaseTypes(t).some((b) => isByteArray(checker, b));
}

export default {
  meta: {
    type: "suggestion",
    fixable: "code",
    docs: { description: "Read a Uint8Array's or Buffer's size as `length` (V8 11 does not inline `byteLength`)" },
    messages: { useLength: "read this byte array's size as `.length`: V8 11 does not inline a typed array's `byteLength` (~9 ns a read)" },
    schema: [],
  },
  create(context) {
    const services = context.sourceCode.parserServices;
    if (!services?.program) throw new Error("igord/byte-array-length needs type information (parserOptions.projectService)");
    const checker = services.program.getTypeChecker();
    return {
      "MemberExpression[computed=false][property.name='byteLength']"(node) {
        const receiver = services.esTreeNodeToTSNodeMap.get(node.object);
        if (!isByteArray(checker, checker.getNonNullableType(checker.getTypeAtLocation(receiver)))) return;
        context.report({ node: node.property, messageId: "useLength", fix: (f) => f.replaceText(node.property, "length") });
      },
    };
  },
};
