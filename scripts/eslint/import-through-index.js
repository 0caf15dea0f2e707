// ESLint rule: a file in one folder of src/ imports another folder only through that
// folder's index.ts (its public face), so a folder can change its insides freely.
import { dirname, relative, resolve, sep } from "node:path";

const SRC = resolve(new URL("../../src", import.meta.url).pathname);

/** `["sandbox", "vm-sandbox.ts"]` for src/sandbox/vm-sandbox.ts; undefined outside src/. */
function srcParts(path) {
  const rel = relative(SRC, path);
  if (rel.startsWith("..") || rel === "") return undefined;
  return rel.split(sep);
}

export default {
  meta: {
    type: "problem",
    docs: { description: "cross-folder imports in src/ go through the folder's index.ts" },
    schema: [],
    messages: {
      throughIndex:
        "import {{target}} through ../{{folder}}/index.js: other folders see only a folder's index",
    },
  },
  create(context) {
    const file = context.filename;
    const from = srcParts(file);
    if (!from || from.length < 2) return {};
    const check = (node, source) => {
      if (typeof source !== "string" || !source.startsWith(".")) return;
      const target = resolve(dirname(file), source.replace(/\.js$/, ".ts"));
      const to = srcParts(target);
      if (!to || to.length < 2 || to[0] === from[0]) return;
      if (to.length === 2 && to[1] === "index.ts") return;
      context.report({
        node,
        messageId: "throughIndex",
        data: { target: to.join("/"), folder: to[0] },
      });
    };
    return {
      ImportDeclaration: (node) => check(node.source, node.source.value),
      ExportNamedDeclaration: (node) => node.source && check(node.source, node.source.value),
      ExportAllDeclaration: (node) => check(node.source, node.source.value),
      ImportExpression: (node) =>
        node.source.type === "Literal" && check(node.source, node.source.value),
    };
  },
};
