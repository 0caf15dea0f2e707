// QEMU holds the descriptors its launch plan names and nothing else: not a file or lock the
// wheellock process inherited without close-on-exec (finding 6, the jail's other side).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { scratchDir } from "../helpers/vm.js";

const STRAY_FD = 200;

test("a descriptor inherited without close-on-exec does not reach QEMU", () => {
  const dir = scratchDir("wheellock-fds-");
  const secret = join(dir, "root-only");
  writeFileSync(secret, "not for QEMU", { mode: 0o600 });
  const launcher = join(dir, "launch.mts");
  // Stands in for QemuProcess.start: the same descriptors, a shell in QEMU's place that lists
  // what it holds.
  writeFileSync(
    launcher,
    `
    import { spawn } from "node:child_process";
    import { openLaunchDescriptors } from ${JSON.stringify(join(import.meta.dirname, "../../src/vmm/launch-descriptors.ts"))};
    const opened = await openLaunchDescriptors(
      [{ fd: 3, kind: "console", path: ${JSON.stringify(join(dir, "console.sock"))} }],
      undefined,
    );
    const stdio = opened.stdio.map((entry, fd) => (fd === 1 ? "inherit" : entry));
    const child = spawn("/bin/sh", ["-c", "for f in /proc/self/fd/*; do echo \\"$f $(readlink $f)\\"; done"], { stdio });
    opened.close();
    opened.console.destroy();
    child.on("exit", (code) => process.exit(code ?? 1));
    `,
  );
  // bash: dash takes one-digit descriptors only.
  const run = spawnSync(
    "bash",
    [
      "-c",
      `exec ${STRAY_FD}<"$1"; exec "$2" --import tsx "$3"`,
      "sh",
      secret,
      process.execPath,
      launcher,
    ],
    { encoding: "utf8", timeout: 60_000 },
  );
  assert.equal(run.status, 0, run.stderr);
  const held = new Map(
    run.stdout
      .trim()
      .split("\n")
      .map((line) => line.split(" ") as [string, string]),
  );
  assert.match(held.get("/proc/self/fd/3") ?? "", /^socket:/, "the planned descriptor is there");
  assert.ok(![...held.values()].includes(secret), `QEMU would hold ${secret}: ${run.stdout}`);
  assert.equal(held.get(`/proc/self/fd/${STRAY_FD}`), "/dev/null");
});
