// A node whose TLS certificate the client does not trust (a private CA it was not given): the
// REST calls (`wheellock list --remote`) and the data plane (`sandbox.exec()`) both say so
// and name the cure, where the REST path used to say only "not reachable (DEPTH_ZERO_...)".
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrAuth, Sandbox } from "../../src/index.js";
import { createCa } from "../../src/net/tls/index.js";
import { listRemote, resolveRemote } from "../../src/sdk/index.js";
import { FakeHost } from "../helpers/fake-host.js";
import { startTestNode, type TestNode } from "../helpers/test-node.js";

const dataDir = mkdtempSync(join(tmpdir(), "wheellock-remote-tls-"));
process.env.WHEELLOCK_DATA_DIR = dataDir;
let host: FakeHost;
let n: TestNode;
before(async () => {
  host = new FakeHost(dataDir);
  // A self-signed certificate: trusted by no client unless given as its CA.
  n = await startTestNode(host, dataDir, { nodeId: "node-tls", tls: createCa() });
});
after(async () => {
  await n.running.close();
  await host.close();
  rmSync(dataDir, { recursive: true, force: true });
});

test("an untrusted node certificate is named as such, with WHEELLOCK_REMOTE_CA, on both paths", async () => {
  assert.match(n.running.url, /^https:/);
  const untrusted = (err: unknown) => {
    assert.ok(err instanceof ErrAuth, String(err));
    assert.match(err.message, /TLS certificate is not trusted .*WHEELLOCK_REMOTE_CA/);
    return true;
  };
  await assert.rejects(
    listRemote(resolveRemote({ url: n.running.url, token: n.token })!),
    untrusted,
  );
  const sb = Sandbox.connect(`vm-00000000@node-tls`, {
    remote: { url: n.running.url, token: n.token },
  });
  await assert.rejects(sb.exec(["true"]), untrusted);
});
