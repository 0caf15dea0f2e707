// The runtime image (deploy/runtime-image) end to end: build it without Docker, import it on
// node A, push it to Debian's docker-registry on loopback, then boot a sandbox on node B (empty
// image store) from the pushed reference and run wheellock *inside* it.
//
// It takes minutes even with the Debian base layer (mmdebstrap) cached: ~7 min on the 2-core
// development machine under load (building the ~110 MB app layer, pushing and pulling ~190 MB,
// flattening it, booting). Too long for every CI run, so it runs when asked:
// WHEELLOCK_TEST_RUNTIME_IMAGE=1 (and builds the base layer first if it is not cached).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { cachedBaseLayer } from "../../deploy/runtime-image/base-layer.js";
import { runtimeImageWorkDir } from "../../deploy/runtime-image/build.js";
import { prepareAssets } from "../../src/setup/index.js";
import { freshNode } from "../helpers/node-dirs.js";
import { startRegistry, type TestRegistry } from "../helpers/registry.js";
import { scratchDir } from "../helpers/vm.js";

const run = promisify(execFile);
const MINUTE_MS = 60_000;
const PACKAGE_VERSION = (JSON.parse(readFileSync("package.json", "utf8")) as { version: string })
  .version;
const enabled = process.env.WHEELLOCK_TEST_RUNTIME_IMAGE === "1";
const skip = enabled
  ? false
  : `takes minutes: set WHEELLOCK_TEST_RUNTIME_IMAGE=1 to build the runtime image and run it${
      cachedBaseLayer(runtimeImageWorkDir()) ? "" : " (its Debian base layer is not cached yet)"
    }`;
let reg: TestRegistry | undefined;

before(async () => {
  if (!enabled) return;
  await prepareAssets();
  reg = await startRegistry();
});

after(async () => {
  await reg?.stop();
});

test(
  "built, pushed, pulled on another node: wheellock runs inside a sandbox of its own image",
  { skip, timeout: 30 * MINUTE_MS },
  async () => {
    assert.ok(reg);
    const tar = join(scratchDir(), "runtime.tar");
    const built = await run(
      process.execPath,
      ["--import", "tsx", "deploy/runtime-image/build.ts", "--out", tar, "--tag", "test"],
      { timeout: 20 * MINUTE_MS, maxBuffer: 16 * 1024 * 1024 },
    );
    assert.match(built.stdout, /manifest sha256:[a-f0-9]{64}/);

    const a = freshNode();
    const cli = (args: string[]): Promise<{ stdout: string }> =>
      run(process.execPath, ["dist/cli/main.cjs", ...args], {
        env: a.env,
        timeout: 10 * MINUTE_MS,
      });
    await cli(["image", "import", "wheellock/runtime:test", tar]);
    const target = `${reg.host}/wheellock/runtime:test`;
    const pushed = await cli(["push", "wheellock/runtime:test", target]);
    assert.match(pushed.stdout, /3 uploaded, 0 mounted, 0 already there/);

    // Node B has never seen the image: the sandbox start pulls it from the registry.
    const b = freshNode();
    const commands = [
      ["wheellock", "--version"],
      ["wheellock", "--help"],
      ["wheellock", "serve", "--help"],
      ["id", "-u"],
      ["qemu-system-x86_64", "--version"],
    ];
    const r = await run(
      process.execPath,
      [
        "--import",
        "tsx",
        "test/helpers/exec-in-image.ts",
        target,
        ...commands.map((c) => JSON.stringify(c)),
      ],
      { env: b.env, timeout: 20 * MINUTE_MS, maxBuffer: 16 * 1024 * 1024 },
    );
    const results = JSON.parse(r.stdout.trim().split("\n").pop() ?? "[]") as Array<{
      exitCode: number;
      stdout: string;
      stderr: string;
    }>;
    const [version, help, serveHelp, uid, qemu] = results;
    assert.equal(version?.exitCode, 0, version?.stderr);
    assert.equal(version?.stdout.trim(), PACKAGE_VERSION);
    assert.equal(help?.exitCode, 0, help?.stderr);
    assert.match(help?.stdout ?? "", /Usage: wheellock/);
    assert.match(help?.stdout ?? "", /\bpush\b/);
    // The image's entry point, as the pods run it.
    assert.equal(serveHelp?.exitCode, 0, serveHelp?.stderr);
    assert.match(serveHelp?.stdout ?? "", /Usage: wheellock serve/);
    assert.match(serveHelp?.stdout ?? "", /--single/);
    assert.equal(uid?.stdout.trim(), "10001", "the image's non-root user");
    assert.equal(qemu?.exitCode, 0, qemu?.stderr);
    assert.match(qemu?.stdout ?? "", /QEMU emulator version/);
  },
);
