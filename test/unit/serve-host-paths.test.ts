// The operator token is for lifecycle calls, not for the node's files: by default no host path
// (mount, disk, policy script, kernel, CA) may be named from the network; with
// `serve --host-path DIR` only paths that resolve (symlinks and `..` included) under DIR.
// Before, any absolute path the `serve` user could read was accepted: a mount of its ~/.ssh or
// of the node's own key.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrInvalidConfig, Sandbox, type SandboxOptions } from "../../src/index.js";
import { hostPathRoots, startNode, type RunningNode } from "../../src/serve/index.js";
import { nodeOptions } from "../../src/serve/create-options.js";
import { FakeHost } from "../helpers/fake-host.js";

const dataDir = mkdtempSync(join(tmpdir(), "wheellock-serve-paths-"));
process.env.WHEELLOCK_DATA_DIR = dataDir;
process.on("exit", () => rmSync(dataDir, { recursive: true, force: true }));
const open = join(dataDir, "open");
const secret = join(dataDir, "secret");
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
  const running = await startNode(
    {
      listen: { host: "127.0.0.1", port: 0 },
      version: "test",
      nodeId: name,
      tokenFile: join(dataDir, `${name}.token`),
      maxSandboxes: 8,
      ...(hostPaths ? { hostPaths: hostPathRoots(hostPaths) } : {}),
    },
    host,
  );
  const remote = { url: running.url, token: readFileSync(running.tokenPath, "utf8").trim() };
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
    const tenantSide = await Sandbox.create({ policyScript: join(open, "hooks.ts"), remote });
    await assert.rejects(sb.configure({ policyScript: join(secret, "key") }), refused(outside));
    await sb.close();
    await tenantSide.close();
  });

  test("the path used is the one checked: symlinks resolved before the sandbox opens it", () => {
    const roots = hostPathRoots([open]);
    const options = nodeOptions(mount(join(open, "link-in")), roots) as SandboxOptions;
    assert.equal(
      (options.mounts?.["/data"] as { hostPath: string }).hostPath,
      join(hostPathRoots([open])[0] as string, "work"),
    );
    // The node owner's own --single plan is not a network caller's.
    assert.equal(
      (nodeOptions(mount(secret), "any") as SandboxOptions).mounts?.["/data"]?.type,
      "host_fs",
    );
    assert.throws(() => hostPathRoots(["relative"]), /must be absolute/);
    assert.throws(() => hostPathRoots([join(dataDir, "missing")]), /no such directory/);
  });
});
