// The agent (PID 1) reads /etc/passwd and /etc/group for every exec with a `user`, and
// rewrites /etc/hosts when a fork copy gets its hostname. Guest root owns those files: a FIFO
// put there must not hang the agent (every later exec would wait on it). The lookup fails at
// once with a clear error, the hosts file is replaced, and the agent goes on serving.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Sandbox } from "../../src/index.js";
import { isolateDataDir } from "../helpers/vm.js";

isolateDataDir();
let sb: Sandbox | undefined;

before(async () => {
  sb = await Sandbox.create({ timeoutSeconds: 300 });
});

after(async () => {
  await sb?.close();
});

test(
  "a FIFO at /etc/passwd fails a user lookup promptly and the agent goes on",
  { timeout: 240_000 },
  async () => {
    const s = sb as Sandbox;
    const swap = await s.exec("mv /etc/passwd /etc/passwd.real && mkfifo /etc/passwd");
    assert.equal(swap.exitCode, 0, swap.stderr);
    // Before the fix the agent blocked in open() on the FIFO: this exec never answered.
    await assert.rejects(
      s.exec("true", { user: "nobody", timeoutMs: 60_000 }),
      /\/etc\/passwd: not a regular file/,
    );
    const next = await s.exec("echo still here");
    assert.equal(next.stdout, "still here\n");
    // A symlink is refused too (the agent opens without following it).
    const link = await s.exec("rm /etc/passwd && ln -s /etc/passwd.real /etc/passwd");
    assert.equal(link.exitCode, 0, link.stderr);
    await assert.rejects(s.exec("true", { user: "nobody" }), /cannot read \/etc\/passwd/);
    const back = await s.exec("rm /etc/passwd && mv /etc/passwd.real /etc/passwd");
    assert.equal(back.exitCode, 0, back.stderr);
    assert.equal((await s.exec("id -un", { user: "nobody" })).stdout, "nobody\n");
  },
);

test(
  "a FIFO at /etc/hosts does not hang a fork copy's CONFIGURE (hostname)",
  { timeout: 300_000 },
  async () => {
    // Privileged: /etc/hosts is a bind mount of the agent's tmpfs copy, which only a command
    // with CAP_SYS_ADMIN can unmount to put something else there.
    const parent = await Sandbox.create({ privileged: true, timeoutSeconds: 300 });
    try {
      const swap = await parent.exec("umount /etc/hosts && rm -f /etc/hosts && mkfifo /etc/hosts");
      assert.equal(swap.exitCode, 0, swap.stderr);
      // The copy's CONFIGURE sets its hostname: the agent reads /etc/hosts to keep its lines.
      // Before the fix it blocked in open() on the FIFO and the fork never came up.
      const started = Date.now();
      const [copy] = await parent.fork(1);
      try {
        assert.ok(copy, "no fork copy");
        const r = await copy.exec("hostname; test -f /etc/hosts && grep -c 127.0.1.1 /etc/hosts");
        assert.equal(r.exitCode, 0, r.stderr);
        assert.equal(r.stdout, `${copy.id}\n1\n`);
        // Bounded generously for loaded CI machines: a hang runs into the test's timeout.
        assert.ok(Date.now() - started < 240_000);
      } finally {
        await copy?.close();
      }
    } finally {
      await parent.close();
    }
  },
);
