// QEMU gets none of the caller's environment: `--secret NAME` values live there.
import assert from "node:assert/strict";
import { test } from "node:test";
import { qemuEnvironment } from "../../src/vmm/qemu-env.js";

test("secrets and other variables of the caller never reach QEMU's environment", () => {
  const env = qemuEnvironment({
    GITHUB_TOKEN: "ghp_real_value",
    AWS_SECRET_ACCESS_KEY: "x",
    HOME: "/root",
    PATH: "/home/u/evil-bin:/usr/bin",
    LANG: "C.UTF-8",
    TMPDIR: "/var/tmp",
  });
  assert.deepEqual(env, {
    PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    LANG: "C.UTF-8",
    TMPDIR: "/var/tmp",
  });
});
