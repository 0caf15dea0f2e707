// Host paths a caller names at create time on a node (serve --host-path DIR). Before, the node
// checked each path (under an opened directory) and passed the PATH on; the supervisor opened
// it later. Whoever could write under the opened directory swapped it in between for a
// symlink to anything the `serve` user can read, and the sandbox served or ran that. Now the
// policy script is read by the node and passed as content; a mount's or disk's path goes with
// the identity (dev:ino) of what the node checked, and the opener refuses anything else.
// Each test swaps the path in the host's `create` (after the node's check, before the use)
// and then uses it as the supervisor does.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { closeSync, mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { planSandbox, type SandboxOptions, type SandboxPlan } from "../../src/config/index.js";
import { ErrInvalidConfig, Sandbox } from "../../src/index.js";
import { SandboxDisks } from "../../src/sandbox/disks.js";
import { providerFor } from "../../src/sandbox/fuse-mounts.js";
import { trustedUpstreamCas } from "../../src/sandbox/intercept.js";
import type { RunningNode } from "../../src/serve/index.js";
import { openImageFile, openReopenable } from "../../src/vmm/launch-descriptors.js";
import { FakeHost } from "../helpers/fake-host.js";
import { hostPathsFixture, startTestNode } from "../helpers/test-node.js";

const { dataDir, open, readOnly, secret } = hostPathsFixture("wheellock-serve-create-race-");
writeFileSync(join(secret, "key.txt"), "the serve user's secret\n");
const CHECKED_CA = "-----BEGIN CERTIFICATE-----\nchecked\n-----END CERTIFICATE-----";
const OTHER_CA = "-----BEGIN CERTIFICATE-----\nswapped in\n-----END CERTIFICATE-----\n";
const CHECKED = 'export default [{ action: "block", path: "/checked" }];\n';

/** Replaces `path` with a symlink to `target`, as a local user racing the node would. */
function swap(path: string, target: string): void {
  renameSync(path, `${path}.checked`);
  symlinkSync(target, path);
}

let running: RunningNode;
let host: FakeHost;
let token: string;
before(async () => {
  host = new FakeHost(dataDir);
  ({ running, token } = await startTestNode(host, dataDir, {
    nodeId: "node-race",
    hostPaths: [open],
    readOnlyHostPaths: [readOnly],
  }));
});
after(async () => {
  await running.close();
  await host.close();
});

/**
 * Creates through the node; `use` runs in the host's `create` after `attack`, with the plan a
 * supervisor would get. Returns what `use` returned or threw.
 */
async function createAndUse<T>(
  options: SandboxOptions,
  attack: () => void,
  use: (plan: SandboxPlan) => Promise<T>,
): Promise<{ value?: T; error?: unknown }> {
  let outcome: { value?: T; error?: unknown } = {};
  host.onCreate = async (passed) => {
    attack();
    const plan = planSandbox(passed);
    outcome = await use(plan).then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    );
  };
  try {
    const sb = await Sandbox.create({ ...options, remote: { url: running.url, token } });
    await sb.close();
  } finally {
    host.onCreate = undefined;
  }
  return outcome;
}

const replaced = (outcome: { error?: unknown }): void => {
  assert.ok(outcome.error instanceof ErrInvalidConfig, `not refused: ${String(outcome.error)}`);
  assert.match(outcome.error.message, /no longer the file that was checked/);
};

describe("create-time host paths swapped after the node's check", () => {
  test("a policy script: the sandbox runs the file the node checked", async () => {
    const script = join(readOnly, "hooks.mjs");
    writeFileSync(script, CHECKED);
    const outcome = await createAndUse(
      { policyScript: script },
      () => swap(script, join(secret, "other.mjs")),
      async (plan) => {
        assert.equal(plan.policyScript, undefined, "a path reached the sandbox");
        return plan.policyScriptSource?.text;
      },
    );
    assert.equal(outcome.error, undefined, String(outcome.error));
    assert.equal(outcome.value, CHECKED);
  });

  test("a directory mount: a symlink put in its place is not served", async () => {
    const dir = join(open, "project");
    mkdirSync(dir);
    writeFileSync(join(dir, "mine.txt"), "mine\n");
    const mount = (plan: SandboxPlan) =>
      providerFor("/data", plan.mounts["/data"]!, dataDir, {}, 1 << 20).then((p) => p.readdir("/"));
    const fine = await createAndUse(
      { mounts: { "/data": { type: "host_fs", hostPath: dir } } },
      () => undefined,
      mount,
    );
    assert.equal(fine.error, undefined, String(fine.error));
    assert.deepEqual(
      fine.value?.map((e) => e.name),
      ["mine.txt"],
    );
    replaced(
      await createAndUse(
        { mounts: { "/data": { type: "host_fs", hostPath: dir } } },
        () => swap(dir, secret),
        mount,
      ),
    );
    // An overlay's lower layer is the same directory, checked the same way.
    rmSync(dir);
    renameSync(`${dir}.checked`, dir);
    replaced(
      await createAndUse(
        { mounts: { "/data": { type: "overlay", hostPath: dir } } },
        () => swap(dir, secret),
        mount,
      ),
    );
  });

  test("a file mount: a symlink put in its place is not served", async () => {
    const file = join(open, "notes.txt");
    writeFileSync(file, "notes\n");
    replaced(
      await createAndUse(
        { mounts: { "/notes.txt": { type: "host_fs", hostPath: file, readonly: true } } },
        () => swap(file, join(secret, "key.txt")),
        (plan) => providerFor("/notes.txt", plan.mounts["/notes.txt"]!, dataDir, {}, 1 << 20),
      ),
    );
  });

  test("a disk image: a symlink put in its place is not opened for the VM", async () => {
    const image = join(open, "data.img");
    writeFileSync(image, Buffer.alloc(4096));
    writeFileSync(join(secret, "other.img"), Buffer.alloc(4096, 1));
    const openDisk = async (plan: SandboxPlan) => {
      const disks = SandboxDisks.attach(plan.id, plan.disks);
      try {
        const [disk] = disks.vmDisks;
        const fd = openImageFile({
          path: disk!.path,
          write: !disk!.readonly,
          ...(disk!.identity !== undefined ? { identity: disk!.identity } : {}),
        });
        closeSync(fd);
        return fd;
      } finally {
        disks.release();
      }
    };
    const disks = [{ hostPath: image, guestPath: "/mnt/data" }];
    const fine = await createAndUse({ disks }, () => undefined, openDisk);
    assert.equal(typeof fine.value, "number", String(fine.error));
    replaced(await createAndUse({ disks }, () => swap(image, join(secret, "other.img")), openDisk));
  });

  test("a kernel: a symlink put in its place is not opened for QEMU", async () => {
    const kernel = join(open, "vmlinuz");
    writeFileSync(kernel, "checked kernel");
    writeFileSync(join(secret, "other-kernel"), "another file");
    const openKernel = async (plan: SandboxPlan) => {
      const fd = openReopenable(
        {
          fd: 3,
          kind: "reopen",
          path: plan.kernel!,
          write: false,
          ...(plan.kernelIdentity !== undefined ? { identity: plan.kernelIdentity } : {}),
        },
        undefined,
      );
      closeSync(fd);
      return fd;
    };
    const fine = await createAndUse({ kernel }, () => undefined, openKernel);
    assert.equal(typeof fine.value, "number", String(fine.error));
    replaced(
      await createAndUse({ kernel }, () => swap(kernel, join(secret, "other-kernel")), openKernel),
    );
  });

  test("an upstream CA: the sandbox trusts the file the node checked", async () => {
    const ca = join(open, "ca.pem");
    writeFileSync(ca, CHECKED_CA);
    writeFileSync(join(secret, "other-ca.pem"), OTHER_CA);
    const outcome = await createAndUse(
      { upstreamCa: [ca], networkIntercept: true },
      () => swap(ca, join(secret, "other-ca.pem")),
      async (plan) => {
        assert.deepEqual(plan.upstreamCa, [], "a path reached the sandbox");
        return trustedUpstreamCas(plan);
      },
    );
    assert.equal(outcome.error, undefined, String(outcome.error));
    assert.deepEqual(outcome.value, [CHECKED_CA]);
  });

  test("content is the node's to pass: a caller's own upstreamCaPems is refused", async () => {
    await assert.rejects(
      Sandbox.create({
        upstreamCaPems: [OTHER_CA],
        networkIntercept: true,
        remote: { url: running.url, token },
      }),
      (err: Error) => err instanceof ErrInvalidConfig && /set by the node/.test(err.message),
    );
  });

  test("content is the node's to pass: a caller's own policyScriptSource is refused", async () => {
    await assert.rejects(
      Sandbox.create({
        policyScriptSource: { name: "x.mjs", text: "export default [];" },
        remote: { url: running.url, token },
      }),
      (err: Error) => err instanceof ErrInvalidConfig && /set by the node/.test(err.message),
    );
  });
});
