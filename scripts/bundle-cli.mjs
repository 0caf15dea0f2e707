#!/usr/bin/env node
// Bundles the CLI after `tsc` (npm run build): dist/cli/main.js is replaced by an esbuild
// bundle of src/cli/main.ts whose code sits in a few chunks under dist/cli/chunks/.
//
// Why: every CLI call pays for loading its modules, and Node's ESM loader pays per file
// (resolve, stat, read, compile): `run` reached ~250 of our files, about half a second of CPU
// on this machine before the sandbox even started (docs/PERFORMANCE.md, issue 16). Splitting
// keeps each command's dynamic import() lazy: `version` and `--help` still load no command.
// npm packages stay external, so the ones imported lazily (ws, @kubernetes/client-node, tsx)
// are still loaded only when used, except the two that every command loads at start-up:
// commander, and @opentelemetry/api (CommonJS spread over ~60 files: ~90 ms of CPU here to
// require; its state lives on a global symbol, so a bundled copy still sees a tracer that an
// application registers). The rest of dist/ (the library, the supervisor and kernel build
// entry points that ownEntryPoint() starts) stays tsc's, file for file.
import { readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const outdir = join(root, "dist", "cli");

const BUNDLED = new Set(["commander", "@opentelemetry/api"]);
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const external = Object.keys({ ...pkg.dependencies, ...pkg.devDependencies }).filter(
  (name) => !BUNDLED.has(name),
);

// Chunk names carry content hashes: drop the previous build's so they do not pile up.
rmSync(join(outdir, "chunks"), { recursive: true, force: true });

await build({
  absWorkingDir: root,
  entryPoints: { main: "src/cli/main.ts" },
  outdir,
  chunkNames: "chunks/[name]-[hash]",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  external,
  // The bundled CommonJS packages require() Node's built-ins: give every chunk a require.
  banner: {
    js: 'import { createRequire as __wheellockRequire } from "node:module"; const require = __wheellockRequire(import.meta.url);',
  },
  sourcemap: true,
  logLevel: "warning",
});
