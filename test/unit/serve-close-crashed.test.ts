// The SDK's close() of a sandbox that is no longer running on its node (its supervisor died,
// the node restarted) removes it, as `DELETE` does: the data plane refused every connection to
// a sandbox not running, so `stop` never reached the node, close() resolved, and the crashed
// record stayed on the node for good (review13 F9). Only `stop` is served for such a sandbox.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ErrVMNotRunning, Sandbox } from "../../src/index.js";
import type { HostedSandbox } from "../../src/serve/index.js";
import { fakeNodeForFile } from "../helpers/test-node.js";

const fx = fakeNodeForFile("node-close-crashed");

/** Marks the sandbox crashed, as a node lists one whose supervisor died. */
function crash(id: string): void {
  const local = id.split("@")[0] as string;
  const hosted = fx.host.find(local) as { -readonly [K in keyof HostedSandbox]: HostedSandbox[K] };
  hosted.status = "crashed";
}

test("close() of a crashed sandbox removes it from its node", async () => {
  const sb = await Sandbox.create({ remote: fx.node.remote });
  crash(sb.id);
  // With its own token, as a client that was handed only the sandbox would close it.
  const own = Sandbox.connect(sb.id, {
    remote: { url: fx.node.running.url, token: sb.token as string },
  });
  await own.close();
  assert.equal(fx.host.find(sb.id.split("@")[0] as string), undefined);
});

test("anything but stop on a sandbox that is not running is ErrVMNotRunning", async () => {
  const sb = await Sandbox.create({ remote: fx.node.remote });
  crash(sb.id);
  await assert.rejects(sb.exec(["true"]), ErrVMNotRunning);
  await assert.rejects(sb.readFile("/etc/hostname"), ErrVMNotRunning);
  assert.ok(fx.host.find(sb.id.split("@")[0] as string), "it is still listed");
  await sb.close();
  assert.equal(fx.host.find(sb.id.split("@")[0] as string), undefined);
});
