// The attack of review rev19 H2: with any `serve --host-path DIR`, the operator token wrote a
// file into DIR (a read-write host_fs mount, the files API) and then named it as the sandbox's
// policy script, which the node imports and runs in its own process (root in the recommended
// deployment). A policy script is now taken only from a `--host-path-ro` root, whose mounts and
// disks callers get read-only (an overlay, which never writes its lower directory, is fine).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ErrInvalidConfig, Sandbox, type SandboxOptions } from "../../src/index.js";
import { hostPathRoots, type RunningNode } from "../../src/serve/index.js";
import { nodeOptions } from "../../src/serve/create-options.js";
import { saveFakeCheckpoint } from "../helpers/fake-checkpoint.js";
import { FakeHost } from "../helpers/fake-host.js";
import { hostPathsFixture, startTestNode } from "../helpers/test-node.js";

const { dataDir, open, readOnly } = hostPathsFixture("wheellock-serve-path-ro-");
const HOOKS =
  'import("node:fs").then((fs) => fs.writeFileSync("/tmp/pwned", "")); export default [];\n';
writeFileSync(join(readOnly, "hooks.mjs"), 'export default [{ action: "block", path: "/x" }];\n');
writeFileSync(join(readOnly, "disk.img"), Buffer.alloc(4096));
writeFileSync(join(open, "disk.img"), Buffer.alloc(4096));

function refused(pattern: RegExp) {
  return (err: Error) => {
    assert.ok(err instanceof ErrInvalidConfig, String(err));
    assert.match(err.message, pattern);
    assert.doesNotMatch(err.message, /\n/, "one line");
    return true;
  };
}

describe("--host-path-ro: a policy script only from a root callers cannot write", () => {
  let running: RunningNode;
  let host: FakeHost;
  let remote: { url: string; token: string };
  before(async () => {
    host = new FakeHost(dataDir);
    ({ running, remote } = await startTestNode(host, dataDir, {
      nodeId: "node-ro",
      hostPaths: [open],
      readOnlyHostPaths: [readOnly],
    }));
  });
  after(async () => {
    await running.close();
    await host.close();
  });

  test("the reviewer's repro: write a script through a read-write mount, then name it", async () => {
    const sb = await Sandbox.create({
      allowedHosts: ["example.com"],
      mounts: { "/w": { type: "host_fs", hostPath: open } },
      remote,
    });
    // What `sb.writeFile("/w/hooks.mjs", ...)` does through the mount, on the node's disk.
    writeFileSync(join(open, "hooks.mjs"), HOOKS);
    const writable =
      /policyScript .*lies in a --host-path directory callers can write .*serve --host-path-ro DIR/;
    await assert.rejects(
      sb.configure({ policyScript: join(open, "hooks.mjs") }),
      refused(writable),
    );
    assert.equal(host.sandbox(sb.id).configured.length, 0, "the script reached the sandbox");
    await assert.rejects(
      Sandbox.create({ policyScript: join(open, "hooks.mjs"), remote }),
      refused(writable),
    );
    // From the read-only root: taken, at create and in configure.
    await sb.configure({ policyScript: join(readOnly, "hooks.mjs") });
    assert.equal(host.sandbox(sb.id).configured.length, 1);
    const other = await Sandbox.create({ policyScript: join(readOnly, "hooks.mjs"), remote });
    await other.close();
    await sb.close();
  });

  test("a read-only root's mounts and disks are read-only: nothing can plant a script there", async () => {
    const rw = /lies in a read-only directory \(serve --host-path-ro\)/;
    await assert.rejects(
      Sandbox.create({ mounts: { "/w": { type: "host_fs", hostPath: readOnly } }, remote }),
      refused(new RegExp(`${rw.source}: mount it with readonly: true or as type "overlay"`)),
    );
    await assert.rejects(
      Sandbox.create({
        disks: [{ hostPath: join(readOnly, "disk.img"), guestPath: "/d" }],
        remote,
      }),
      refused(new RegExp(`${rw.source}: attach it with readonly: true`)),
    );
    const fine = await Sandbox.create({
      mounts: {
        "/r": { type: "host_fs", hostPath: readOnly, readonly: true },
        "/o": { type: "overlay", hostPath: readOnly },
      },
      disks: [{ hostPath: join(readOnly, "disk.img"), guestPath: "/d", readonly: true }],
      remote,
    });
    await fine.close();
  });
});

test("a writable root above a read-only one wins: its files are writable through it", () => {
  const sub = join(open, "policies");
  mkdirSync(sub);
  writeFileSync(join(sub, "hooks.mjs"), "export default [];\n");
  const [rw, ro] = [hostPathRoots([open]), hostPathRoots([sub])];
  assert.throws(
    () => nodeOptions({ policyScript: join(sub, "hooks.mjs") }, [...rw, ...ro], false, rw),
    refused(/callers can write/),
  );
  // A read-write mount under both: allowed (the writable root opens it anyway).
  const mounts = { "/p": { type: "host_fs", hostPath: sub } };
  nodeOptions({ mounts }, [...rw, ...ro], false, rw);
});

test("a copy of a checkpoint: its read-write mount of a read-only root is refused too", async () => {
  await saveFakeCheckpoint(dataDir, "of-ro", {
    sourceSandboxId: "vm-00000004",
    mounts: { "/workspace": { type: "host_fs", hostPath: readOnly } },
    fuse: { initialized: true, inodes: { nextId: "2", nodes: [] } },
  });

  const roots = hostPathRoots([readOnly]);
  assert.throws(
    () => nodeOptions({ fromCheckpoint: "of-ro", forkMounts: "share" }, roots, false, []),
    refused(/checkpoint of-ro: mounts\["\/workspace"\].hostPath: .* read-only directory/),
  );
  // The default (an overlay over the directory) never writes it.
  const copy = nodeOptions({ fromCheckpoint: "of-ro" }, roots, false, []) as SandboxOptions;
  assert.equal((copy.mounts?.["/workspace"] as { type: string }).type, "overlay");
});
