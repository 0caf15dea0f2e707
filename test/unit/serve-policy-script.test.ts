// `configure`'s policy script on a node. Before, the node checked the path the caller named
// and passed the PATH on; the sandbox opened it later. Whoever could write under the opened
// directory swapped the file for a symlink in between, and the sandbox ran (in the host) a
// file the check had refused. Now the node opens the file once (O_NOFOLLOW, then checks
// where the opened file really is), reads it, and passes the content.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrInvalidConfig, Sandbox, type ConfigureOptions } from "../../src/index.js";
import { createHttpPolicy, loadPolicyScriptSource } from "../../src/net/http-policy/index.js";
import { hostPathRoots, type RunningNode } from "../../src/serve/index.js";
import { readNodePolicyScript } from "../../src/serve/policy-script-read.js";
import { FakeHost } from "../helpers/fake-host.js";
import { hostPathsFixture, startTestNode } from "../helpers/test-node.js";
import { bodyOf, req } from "./net-http-policy-fixtures.js";

const { dataDir, open, secret } = hostPathsFixture("wheellock-serve-policy-");
const CHECKED = 'export default [{ action: "block", path: "/checked" }];\n';

describe("configure's policy script through a node", () => {
  let running: RunningNode;
  let host: FakeHost;
  let token: string;
  before(async () => {
    host = new FakeHost(dataDir);
    ({ running, token } = await startTestNode(host, dataDir, {
      nodeId: "node-policy",
      maxSandboxes: 4,
      readOnlyHostPaths: [open],
    }));
  });
  after(async () => {
    await running.close();
    await host.close();
  });

  test("the sandbox runs the file the node checked, even if it is swapped right after", async () => {
    const script = join(open, "hooks.mjs");
    writeFileSync(script, CHECKED);
    const sb = await Sandbox.create({ remote: { url: running.url, token } });
    const fake = host.sandbox(sb.id);
    let loaded: string | undefined;
    // The sandbox's side: the attacker wins the race (the file is now a symlink to a file
    // outside the opened directory) before the sandbox loads what it was given.
    fake.configure = async (options: ConfigureOptions) => {
      rmSync(script);
      symlinkSync(join(secret, "other.mjs"), script);
      loaded =
        options.policyScriptSource?.text ??
        (options.policyScript !== undefined ? readFileSync(options.policyScript, "utf8") : "");
      assert.equal(options.policyScript, undefined, "a path reached the sandbox");
    };
    await sb.configure({ policyScript: script });
    assert.equal(loaded, CHECKED);
    await sb.close();
  });

  test("content is the node's to pass: a caller's own policyScriptSource is refused", async () => {
    const sb = await Sandbox.create({ remote: { url: running.url, token } });
    await assert.rejects(
      sb.configure({ policyScriptSource: { name: "x.mjs", text: "export default [];" } }),
      (err: Error) => err instanceof ErrInvalidConfig && /set by the node/.test(err.message),
    );
    assert.equal(host.sandbox(sb.id).configured.length, 0);
    await sb.close();
  });
});

test("the node opens the script once: no symlink as its last component, no FIFO, bounded", () => {
  const roots = hostPathRoots([open]);
  writeFileSync(join(open, "ok.ts"), CHECKED);
  // Only from a root callers cannot write (--host-path-ro): `roots` are all writable by default.
  assert.throws(() => readNodePolicyScript(join(open, "ok.ts"), roots), /callers can write/);
  assert.deepEqual(readNodePolicyScript(join(open, "ok.ts"), roots, []), {
    name: "ok.ts",
    text: CHECKED,
  });
  // With the checks' resolution out of the way ("any": the owner's own --single plan), what
  // is opened is still never a symlink (O_NOFOLLOW: a swap after any check fails closed).
  symlinkSync(join(open, "ok.ts"), join(open, "link.ts"));
  assert.throws(
    () => readNodePolicyScript(join(open, "link.ts"), "any"),
    /cannot open it \(ELOOP\)/,
  );
  execFileSync("mkfifo", [join(open, "fifo.mjs")]);
  assert.throws(
    () => readNodePolicyScript(join(open, "fifo.mjs"), roots, []),
    /not a regular file/,
  );
  writeFileSync(join(open, "big.mjs"), Buffer.alloc(1024 * 1024 + 1, 0x20));
  assert.throws(() => readNodePolicyScript(join(open, "big.mjs"), roots, []), /larger than 1 MiB/);
  assert.throws(() => readNodePolicyScript(join(secret, "other.mjs"), roots, []), /outside/);
});

test("a script given as content loads from a private copy that is gone afterwards", async () => {
  const before = readdirSync(tmpdir()).filter((n) => n.startsWith("wheellock-policy-"));
  const policy = createHttpPolicy({ rules: await loadPolicyScriptSource("hooks.mjs", CHECKED) });
  assert.equal((await policy.onRequest(req({ target: "/checked" }), bodyOf())).action, "block");
  await assert.rejects(
    loadPolicyScriptSource("bad.mjs", "export default 42;"),
    (err: Error) =>
      err instanceof ErrInvalidConfig && /policy script bad\.mjs: expected/.test(err.message),
  );
  const left = readdirSync(tmpdir()).filter(
    (n) => n.startsWith("wheellock-policy-") && !before.includes(n),
  );
  assert.deepEqual(left, []);
  assert.ok(existsSync(join(open, "ok.ts")));
});
