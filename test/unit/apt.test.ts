import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ensureHostPackages,
  missingPackages,
  type AptDeps,
  type HostPackage,
} from "../../src/setup/apt.js";
import { ErrSetup } from "../../src/errors.js";
import type { RunToolResult } from "../../src/util/run-tool.js";

const PACKAGES: HostPackage[] = [
  { pkg: "qemu-system-x86", provides: "qemu-system-x86_64" },
  { pkg: "qemu-utils", provides: "qemu-img" },
  { pkg: "e2fsprogs", provides: "mkfs.ext4" },
  { pkg: "e2fsprogs", provides: "debugfs" },
];

interface FakeHost {
  deps: AptDeps;
  calls: { argv: readonly string[]; env: NodeJS.ProcessEnv }[];
  installed: Set<string>;
}

/** A host with the given commands present; `apt` scripts what each apt-get call returns. */
function fakeHost(opts: {
  uid: number;
  present: string[];
  apt?: (argv: readonly string[], installed: Set<string>) => RunToolResult;
}): FakeHost {
  const installed = new Set([...opts.present, "apt-get"]);
  const calls: FakeHost["calls"] = [];
  const deps: AptDeps = {
    uid: () => opts.uid,
    isProvided: (p) => installed.has(p),
    run: async (argv, env) => {
      calls.push({ argv, env });
      return opts.apt ? opts.apt(argv, installed) : { code: 0, stdout: "", stderr: "" };
    },
  };
  return { deps, calls, installed };
}

const providesOf: Record<string, string[]> = {
  "qemu-system-x86": ["qemu-system-x86_64"],
  "qemu-utils": ["qemu-img"],
  e2fsprogs: ["mkfs.ext4", "debugfs"],
};

function installs(argv: readonly string[], installed: Set<string>): RunToolResult {
  if (argv[1] === "install")
    for (const pkg of argv.slice(2)) for (const p of providesOf[pkg] ?? []) installed.add(p);
  return { code: 0, stdout: "", stderr: "" };
}

test("missingPackages lists only packages whose command is absent", () => {
  const host = fakeHost({ uid: 0, present: ["qemu-system-x86_64", "mkfs.ext4"] });
  assert.deepEqual(
    missingPackages(PACKAGES, host.deps).map((p) => p.provides),
    ["qemu-img", "debugfs"],
  );
});

test("nothing missing: no apt-get call, even as non-root", async () => {
  const host = fakeHost({
    uid: 1000,
    present: ["qemu-system-x86_64", "qemu-img", "mkfs.ext4", "debugfs"],
  });
  await ensureHostPackages(PACKAGES, () => undefined, host.deps);
  assert.equal(host.calls.length, 0);
});

test("non-root with missing packages: one-line ErrSetup naming the packages and the sudo command", async () => {
  const host = fakeHost({ uid: 1000, present: ["qemu-system-x86_64", "mkfs.ext4"] });
  const err = await ensureHostPackages(PACKAGES, () => undefined, host.deps).then(
    () => assert.fail("expected ErrSetup"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ErrSetup);
  assert.equal(err.code, "ErrSetup");
  assert.ok(!err.message.includes("\n"), "one line");
  // e2fsprogs is named once even though two of its commands are missing.
  assert.match(err.message, /sudo apt-get install -y qemu-utils e2fsprogs$/);
  assert.equal(host.calls.length, 0, "never runs apt without root");
});

test("root: installs only the missing packages, non-interactively, without apt-get update", async () => {
  const host = fakeHost({
    uid: 0,
    present: ["qemu-system-x86_64", "mkfs.ext4", "debugfs"],
    apt: installs,
  });
  await ensureHostPackages(PACKAGES, () => undefined, host.deps);
  assert.equal(host.calls.length, 1);
  const call = host.calls[0]!;
  assert.deepEqual(call.argv.slice(0, 3), ["apt-get", "install", "-y"]);
  assert.ok(call.argv.includes("qemu-utils"));
  assert.ok(!call.argv.includes("e2fsprogs"));
  assert.equal(call.env.DEBIAN_FRONTEND, "noninteractive");
});

test("root: runs apt-get update and retries when the package lists are missing", async () => {
  let updated = false;
  const host = fakeHost({
    uid: 0,
    present: [],
    apt: (argv, installed) => {
      if (argv[1] === "update") {
        updated = true;
        return { code: 0, stdout: "", stderr: "" };
      }
      if (!updated)
        return { code: 100, stdout: "", stderr: "E: Unable to locate package qemu-utils\n" };
      return installs(argv, installed);
    },
  });
  await ensureHostPackages(PACKAGES, () => undefined, host.deps);
  assert.deepEqual(
    host.calls.map((c) => c.argv[1]),
    ["install", "update", "install"],
  );
});

test("root: other apt failures are reported with apt's stderr, without an update", async () => {
  const host = fakeHost({
    uid: 0,
    present: [],
    apt: () => ({
      code: 100,
      stdout: "",
      stderr: "E: Could not get lock /var/lib/dpkg/lock-frontend\n",
    }),
  });
  await assert.rejects(
    ensureHostPackages(PACKAGES, () => undefined, host.deps),
    (e: unknown) => {
      assert.ok(e instanceof ErrSetup);
      assert.match(e.message, /apt-get install .* failed \(exit 100\): E: Could not get lock/);
      return true;
    },
  );
  assert.equal(host.calls.length, 1);
});

test("root: a package that installs but does not provide its command is an error", async () => {
  const host = fakeHost({ uid: 0, present: ["qemu-system-x86_64", "qemu-img", "mkfs.ext4"] });
  await assert.rejects(
    ensureHostPackages(PACKAGES, () => undefined, host.deps),
    /still missing: debugfs \(from e2fsprogs\)/,
  );
});
