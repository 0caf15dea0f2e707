// CLI start-up (issue 11): the bare `version` and `--help` load only the command table, and a
// command loads only its own module's graph. A resolve hook in the CLI process lists every
// module it loads; the timing itself is in the bench (bench/cli-startup.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const SRC = join(import.meta.dirname, "../../src");

// Runs in the loader's thread: one line on stderr per module resolved (node: builtins too).
const HOOK = `export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  process.stderr.write("LOADED " + r.url + "\\n");
  return r;
}`;
const REGISTER = `import { register } from "node:module";
register("data:text/javascript," + encodeURIComponent(${JSON.stringify(HOOK)}));`;

/** Every module the CLI resolved for `args`: src/ paths relative to src, packages by name. */
function modulesLoaded(args: string[]): string[] {
  const r = spawnSync(
    process.execPath,
    [
      "--import",
      "tsx",
      "--import",
      `data:text/javascript,${encodeURIComponent(REGISTER)}`,
      join(SRC, "cli/main.ts"),
      ...args,
    ],
    { encoding: "utf8", timeout: 60_000 },
  );
  assert.equal(r.status, 0, r.stderr);
  const urls = r.stderr
    .split("\n")
    .filter((l) => l.startsWith("LOADED "))
    .map((l) => l.slice("LOADED ".length));
  return [
    ...new Set(
      urls.map((u) =>
        u.startsWith(`file://${SRC}/`)
          ? u.slice(`file://${SRC}/`.length)
          : u.includes("/node_modules/")
            ? `pkg:${/\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(u)?.[1]}`
            : u,
      ),
    ),
  ].sort();
}

test("bare version and --help load the command table and nothing else", () => {
  for (const args of [["version"], ["--help"], ["-v"]]) {
    assert.deepEqual(
      modulesLoaded(args).filter((m) => !m.startsWith("node:")),
      [
        // The bundle's loader (built, main.js is one file with these in it; no command).
        "cli/code-cache.ts",
        "cli/commands.ts",
        "cli/help.ts",
        "cli/main.ts",
        "cli/output.ts",
        "cli/version.ts",
        "paths.ts",
        "stat-memo.ts",
      ],
      args.join(" "),
    );
  }
});

test("a command loads its own module, not the others' (list: no sandbox, no image code)", () => {
  const loaded = modulesLoaded(["list", "--json"]);
  assert.ok(loaded.includes("cli/list.ts"));
  assert.ok(loaded.includes("pkg:commander"));
  for (const m of loaded) assert.doesNotMatch(m, /^(cli\/run|sandbox\/|image\/|net\/tls|vfs\/)/);
});

test("run loads neither image pull nor TLS code until an OCI image or intercept mode asks", () => {
  const loaded = modulesLoaded(["run", "--help"]);
  assert.ok(loaded.includes("sandbox/vm-sandbox.ts"));
  for (const unwanted of ["image/pull.ts", "image/import.ts", "pkg:tar-stream", "node:tls"]) {
    assert.ok(!loaded.includes(unwanted), `run loaded ${unwanted}`);
  }
  for (const m of loaded)
    assert.doesNotMatch(
      m,
      /^(net\/tls\/(x509|ca|leaf-certificates|host-trust|index)\.ts|net\/intercept\/|pkg:@peculiar)/,
    );
});

test("the built `wheellock` command is the CommonJS bundle, and it runs a command", () => {
  const root = join(import.meta.dirname, "../..");
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
    bin: { wheellock: string };
  };
  // CommonJS starts without Node's ES module loader (bundle-cli.mjs): a .js bin would be ESM.
  assert.match(pkg.bin.wheellock, /\.cjs$/);
  const bin = join(root, pkg.bin.wheellock);
  const r = spawnSync(process.execPath, [bin, "list", "--json"], {
    encoding: "utf8",
    timeout: 60_000,
    env: { ...process.env, WHEELLOCK_CODE_CACHE: "0" },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(Array.isArray(JSON.parse(r.stdout)), r.stdout);
});
