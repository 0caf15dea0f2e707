#!/usr/bin/env node
// Bundles the CLI after `tsc` (npm run build): src/cli/main.ts (the bare `version` and
// `--help`, and the loader) becomes dist/cli/main.cjs, the `wheellock` command, and an ES module
// twin dist/cli/main.js in place of tsc's; the rest of the CLI (src/cli/cli.ts: commander and
// every command) becomes one CommonJS file, dist/cli/cli.cjs, that the loader compiles with a
// V8 code cache (src/cli/code-cache.ts).
//
// Why: every CLI call pays for loading its modules. Node's ESM loader pays per file (resolve,
// stat, read, compile): `run` reached ~250 of our files, about half a second of CPU on this
// machine before the sandbox even started (docs/PERFORMANCE.md, issue 16); a bundle pays once.
// And V8 compiles the code it runs again in every process, ~30 ms of a `run -- true` here:
// Node 20 can reuse compiled code only through `vm.Script`'s cachedData, which compiles a
// script, not an ES module, hence CommonJS. Each command's modules still run only when that
// command is invoked (esbuild turns their `import()` into lazy initialisers); the bundle is
// parsed whole only without a cache. npm packages stay external, so the ones imported lazily
// (ws, @kubernetes/client-node, tsx) are still loaded only when used, except the two that
// every command loads at start-up: commander, and @opentelemetry/api (CommonJS spread over
// ~60 files: ~90 ms of CPU here to require; its state lives on a global symbol, so a bundled
// copy still sees a tracer that an application registers). The rest of dist/ (the library,
// the supervisor and kernel build entry points that ownEntryPoint() starts) stays tsc's, file
// for file.
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import ts from "typescript";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const outdir = join(root, "dist", "cli");

const BUNDLED = new Set(["commander", "@opentelemetry/api"]);
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const external = Object.keys({ ...pkg.dependencies, ...pkg.devDependencies }).filter(
  (name) => !BUNDLED.has(name),
);

// The code-split chunks of earlier builds (dist/cli/chunks/), if any, are not used any more.
rmSync(join(outdir, "chunks"), { recursive: true, force: true });

const common = {
  absWorkingDir: root,
  outdir,
  bundle: true,
  platform: "node",
  target: "node20",
  external,
  sourcemap: true,
  logLevel: "warning",
};

// main.js and main.cjs: only main.ts's static imports. Its dynamic import()s (the command
// table's loaders, the fallback to ./cli.js) stay as they are, to tsc's files beside it; the
// loader runs neither when cli.cjs is there. main.cjs is the `wheellock` command (package.json's
// bin): Node starts a CommonJS file without initialising its ES module loader, ~7 ms of every
// call here; main.js stays for `node dist/cli/main.js` as earlier versions documented it.
const dynamicImportsStayExternal = {
  name: "dynamic-imports-stay-external",
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) =>
      args.kind === "dynamic-import" ? { path: args.path, external: true } : undefined,
    );
  },
};
// CommonJS output: strict mode as an ES module's code was; import.meta.url from the file's path.
const commonJs = {
  outExtension: { ".js": ".cjs" },
  format: "cjs",
  define: { "import.meta.url": "__wheellockImportMetaUrl" },
  banner: {
    js: [
      '"use strict";',
      'var __wheellockImportMetaUrl = require("node:url").pathToFileURL(__filename).href;',
    ].join("\n"),
  },
};
await build({
  ...common,
  entryPoints: { main: "src/cli/main.ts" },
  format: "esm",
  plugins: [dynamicImportsStayExternal],
});
await build({
  ...common,
  ...commonJs,
  entryPoints: { main: "src/cli/main.ts" },
  plugins: [dynamicImportsStayExternal],
});

// cli.cjs: the rest of the CLI, compiled by main with a code cache.
await build({ ...common, ...commonJs, entryPoints: { cli: "src/cli/cli.ts" } });

// A vm.Script cannot import() on Node 20 (not without an experimental flag, or a warning on
// stderr): every `import(...)` left in the bundle (npm packages loaded lazily, a policy script's
// own file) becomes a call of the loader's IMPORT_PARAM (src/cli/code-cache.ts), found by
// parsing the bundle, not by matching text. The name has import's length: columns stay put.
const IMPORT_PARAM = "$wlImp";
const bundle = join(outdir, "cli.cjs");
let text = readFileSync(bundle, "utf8");
if (text.includes(IMPORT_PARAM)) throw new Error(`cli.cjs already uses the name ${IMPORT_PARAM}`);
const parsed = ts.createSourceFile(bundle, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.JS);
const imports = [];
const visit = (node) => {
  if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword)
    imports.push(node.expression.getStart(parsed));
  ts.forEachChild(node, visit);
};
visit(parsed);
for (const at of imports.reverse()) {
  if (text.slice(at, at + 6) !== "import") throw new Error(`cli.cjs: no import( at ${at}`);
  text = text.slice(0, at) + IMPORT_PARAM + text.slice(at + 6);
}

// esbuild escapes every non-ASCII character in code (its default charset) but keeps comments
// as written: escaped there too, the bundle is ASCII and main.js decodes it as latin1, several
// times faster than UTF-8 for ~1.5 MB. Only comment text changes (the escapes are not read).
// eslint-disable-next-line no-control-regex
text = text.replace(/[^\x00-\x7f]/gu, (c) => `\\u{${c.codePointAt(0).toString(16)}}`);
writeFileSync(bundle, text);
