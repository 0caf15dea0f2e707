// The operator token is for lifecycle calls, not for the node's files: by default no host path
// (mount, disk, policy script, kernel, CA) may be named from the network; with
// `serve --host-path DIR` only paths that resolve (symlinks and `..` included) under DIR.
// Before, any absolute path the `serve` user could read was accepted: a mount of its ~/.ssh or
// of the node's own key.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrInvalidConfig, Sandbox, type SandboxOptions } from "../../src/index.js";
import { hostPathRoots, readSingleOptions, type RunningNode } from "../../src/serve/index.js";
import { nodeOptions } from "../../src/serve/create-options.js";
import type { SaveCheckpointRequest } from "../../src/sandbox/checkpoint-store.js";
import { saveFakeCheckpoint } from "../helpers/fake-checkpoint.js";
import { FakeHost } from "../helpers/fake-host.js";
import { startTestNode } from "../helpers/test-node.js";

// The node's data dir beside the folders (a host path inside it is refused whatever is open).
const root = mkdtempSync(join(tmpdir(), "wheellock-serve-paths-"));
const dataDir = join(root, "data");
mkdirSync(dataDir);
process.env.WHEELLOCK_DATA_DIR = dataDir;
process.on("exit", () => rmSync(root, { recursive: true, force: true }));
const open = join(root, "open");
const secret = join(root, "secret");
mkdirSync(join(open, "work"), { recursive: true });
mkdirSync(secret);
writeFileSync(join(secret, "key"), "node key\n");
writeFileSync(join(open, "hooks.ts"), "export default {};\n");
symlinkSync(secret, join(open, "link-out"));
symlinkSync(join(open, "work"), join(open, "link-in"));

const mount = (hostPath: string): SandboxOptions => ({
  mounts: { "/data": { type: "host_fs", hostPath, readonly: true } },
});

async function node(name: string, hostPaths?: string[]) {
  const host = new FakeHost(dataDir);
  const { running, remote } = await startTestNode(host, dataDir, {
    nodeId: name,
    ...(hostPaths ? { hostPaths } : {}),
  });
  return { running, host, remote };
}

function refused(pattern: RegExp) {
  return (err: Error) => {
    assert.ok(err instanceof ErrInvalidConfig, String(err));
    assert.match(err.message, pattern);
    return true;
  };
}

describe("host paths from the network", () => {
  let closed: Awaited<ReturnType<typeof node>>;
  let opened: Awaited<ReturnType<typeof node>>;
  const nodes: RunningNode[] = [];
  before(async () => {
    closed = await node("node-closed");
    opened = await node("node-open", [open]);
    nodes.push(closed.running, opened.running);
  });
  after(async () => {
    for (const n of nodes) await n.close();
    await closed.host.close();
    await opened.host.close();
  });

  test("a node opens no host path by default, whatever the field", async () => {
    const { remote } = closed;
    const none = /opens no host paths to callers .*--host-path/;
    await assert.rejects(Sandbox.create({ ...mount(secret), remote }), refused(none));
    await assert.rejects(
      Sandbox.create({ policyScript: join(open, "hooks.ts"), remote }),
      refused(none),
    );
    await assert.rejects(
      Sandbox.create({ disks: [{ hostPath: join(secret, "key"), guestPath: "/d" }], remote }),
      refused(none),
    );
    assert.equal(closed.host.entries.size, 0);
  });

  test("with --host-path, only what resolves under it: not around it, not through a symlink", async () => {
    const { remote } = opened;
    const outside = /is outside the directories this node opens/;
    for (const path of [secret, join(open, "..", "secret"), join(open, "link-out"), "/etc"])
      await assert.rejects(Sandbox.create({ ...mount(path), remote }), refused(outside), path);
    const sb = await Sandbox.create({ ...mount(join(open, "work")), remote });
    // A policy script runs in the node: never from a root callers can write (--host-path).
    await assert.rejects(
      Sandbox.create({ policyScript: join(open, "hooks.ts"), remote }),
      refused(/callers can write .*--host-path-ro/),
    );
    await assert.rejects(sb.configure({ policyScript: join(secret, "key") }), refused(outside));
    await sb.close();
  });

  test("the path used is the one checked: symlinks resolved before the sandbox opens it", () => {
    const roots = hostPathRoots([open]);
    const options = nodeOptions(mount(join(open, "link-in")), roots) as SandboxOptions;
    assert.equal(
      (options.mounts?.["/data"] as { hostPath: string }).hostPath,
      join(hostPathRoots([open])[0] as string, "work"),
    );
    assert.throws(() => hostPathRoots(["relative"]), /must be absolute/);
    assert.throws(() => hostPathRoots([join(dataDir, "missing")]), /no such directory/);
  });
});

const saveLocalCheckpoint = (name: string, extra: Partial<SaveCheckpointRequest>) =>
  saveFakeCheckpoint(dataDir, name, extra);

test("a copy of a checkpoint gets its mounts only where the node opens host paths (review16 C7)", async () => {
  // Checkpoints the node's user took locally, of sandboxes with host mounts: one of a
  // directory the node opens to callers, one of a directory it opens to nobody.
  const save = (name: string, hostPath: string) =>
    saveLocalCheckpoint(name, {
      mounts: { "/workspace": { type: "host_fs", hostPath } },
      fuse: { initialized: true, inodes: { nextId: "2", nodes: [] } },
    });
  await save("of-secret", secret);
  await save("of-open", join(open, "work"));
  const roots = hostPathRoots([open]);
  assert.throws(
    () => nodeOptions({ fromCheckpoint: "of-secret", forkMounts: "share" }, []),
    refused(
      /checkpoint of-secret: mounts\["\/workspace"\].hostPath: this node opens no host paths/,
    ),
  );
  assert.throws(
    () => nodeOptions({ fromCheckpoint: "of-secret", forkMounts: "share" }, roots),
    refused(/is outside the directories this node opens/),
  );
  // Where the node opens the directory: the checkpoint's shape and mounts, as `run` gives them.
  const copy = nodeOptions({ fromCheckpoint: "of-open" }, roots) as SandboxOptions;
  assert.equal(copy.memoryMb, 768);
  assert.equal(copy.forkMounts, undefined);
  const ws = copy.mounts?.["/workspace"] as {
    type: string;
    hostPath: string;
    hostIdentity?: string;
  };
  assert.equal(ws.type, "overlay", "forkMounts defaults to overlay");
  assert.equal(ws.hostPath, join(roots[0] as string, "work"));
  assert.match(ws.hostIdentity ?? "", /^\d+:\d+$/);
  // Mounts given with fromCheckpoint are refused, as locally.
  assert.throws(
    () => nodeOptions({ fromCheckpoint: "of-open", ...mount(join(open, "work")) }, roots),
    refused(/cannot be given others/),
  );
});

test("a copy of a checkpoint with disks: refused where the node cannot check them (review16)", async () => {
  // A checkpoint the node's user took of `run -d --disk /private/p.img:/p:ro`: its disk's
  // content went into the store, without the host path it came from.
  const image = join(secret, "p.img");
  writeFileSync(image, Buffer.alloc(8192, 7));
  const save = (name: string, volume: string | undefined) =>
    saveLocalCheckpoint(name, {
      disks: [{ path: image, guestPath: "/p", readonly: true, volume }],
    });
  await save("of-disk", undefined);
  await save("of-volume", "cache");
  const roots = hostPathRoots([open]);
  for (const r of [[], roots])
    assert.throws(
      () => nodeOptions({ fromCheckpoint: "of-disk" }, r),
      refused(/checkpoint of-disk: disks\[0\] \(\/p\) came from a host file .* refused/),
    );
  // Even with volumes open: its disk did not come from one.
  assert.throws(
    () => nodeOptions({ fromCheckpoint: "of-disk" }, roots, true),
    refused(/host file/),
  );
  // A volume's content: only where the node opens volumes to callers.
  assert.throws(
    () => nodeOptions({ fromCheckpoint: "of-volume" }, roots),
    refused(/checkpoint of-volume: disks\[0\].volume: this node opens no named volumes/),
  );
  const copy = nodeOptions({ fromCheckpoint: "of-volume" }, roots, true) as SandboxOptions;
  assert.equal(copy.memoryMb, 768);
});

test("named volumes: refused to network callers unless the node allows them (--allow-volumes)", async () => {
  const disks = [{ volume: "cache", guestPath: "/cache" }];
  for (const r of [[], hostPathRoots([open])])
    assert.throws(
      () => nodeOptions({ disks }, r),
      refused(/disks\[0\].volume: this node opens no named volumes to callers .*--allow-volumes/),
    );
  assert.deepEqual((nodeOptions({ disks }, [], true) as SandboxOptions).disks, disks);
  // Through a node: POST /v1/sandboxes as the SDK sends it, the node's flag passed on.
  for (const allowVolumes of [false, true]) {
    const host = new FakeHost(dataDir);
    const { running, remote } = await startTestNode(host, dataDir, {
      nodeId: `node-volumes-${allowVolumes}`,
      allowVolumes,
    });
    const given: unknown[] = [];
    host.onCreate = (options) => void given.push(options.disks);
    try {
      if (!allowVolumes)
        await assert.rejects(Sandbox.create({ disks, remote }), refused(/no named volumes/));
      else await (await Sandbox.create({ disks, remote })).close();
      assert.deepEqual(given, allowVolumes ? [disks] : []);
    } finally {
      await running.close();
      await host.close();
    }
  }
  const planFile = join(dataDir, "single-volume-plan.json");
  writeFileSync(planFile, JSON.stringify({ options: { disks } }));
  await assert.rejects(readSingleOptions(planFile, []), refused(/no named volumes/));
  assert.deepEqual((await readSingleOptions(planFile, [], true)).disks, disks);
});

test("a --single plan's host paths are checked as a POST plan's are", async () => {
  const planFile = join(dataDir, "single-plan.json");
  const plan = (hostPath: string): void =>
    writeFileSync(planFile, JSON.stringify({ options: mount(hostPath) }));
  plan(join(secret, "key"));
  // No --host-path: no host path at all, as for a network caller.
  await assert.rejects(readSingleOptions(planFile, []), refused(/opens no host paths/));
  // Outside the opened directory, directly or through a symlink under it.
  await assert.rejects(
    readSingleOptions(planFile, hostPathRoots([open])),
    refused(/outside the directories/),
  );
  plan(join(open, "link-out", "key"));
  await assert.rejects(
    readSingleOptions(planFile, hostPathRoots([open])),
    refused(/outside the directories/),
  );
  // Under it: accepted, resolved, with the identity of what was checked.
  plan(join(open, "link-in"));
  const options = await readSingleOptions(planFile, hostPathRoots([open]));
  const checked = options.mounts?.["/data"] as { hostPath: string; hostIdentity?: string };
  assert.equal(checked.hostPath, join(hostPathRoots([open])[0] as string, "work"));
  assert.match(checked.hostIdentity ?? "", /^\d+:\d+$/);
});

test("attack: a network caller cannot mount the node's own data dir, even under an opened directory", async () => {
  // The owner opened the folder that holds the node's data dir (serve --host-path $HOME).
  const { running, host, remote } = await node("node-home", [root]);
  try {
    const own = /is inside wheellock's data dir|holds wheellock's data dir/;
    for (const path of [root, dataDir, join(dataDir, "checkpoints")]) {
      mkdirSync(path, { recursive: true });
      await assert.rejects(Sandbox.create({ ...mount(path), remote }), refused(own), path);
    }
    writeFileSync(join(dataDir, "checkpoints", "snap.img"), "");
    await assert.rejects(
      Sandbox.create({
        disks: [{ hostPath: join(dataDir, "checkpoints", "snap.img"), guestPath: "/d" }],
        remote,
      }),
      refused(/disks\[0\]\.hostPath: .* is inside wheellock's data dir/),
    );
    assert.equal(host.entries.size, 0, "nothing reached the host");
    const sb = await Sandbox.create({ ...mount(join(open, "work")), remote });
    await sb.close();
  } finally {
    await running.close();
    await host.close();
  }
});
