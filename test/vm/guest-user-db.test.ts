// The agent (PID 1) reads /etc/passwd and /etc/group for every exec with a `user`. Guest root
// owns those files: a FIFO put there must not hang the agent (every later exec would wait on
// it). The lookup fails at once with a clear error, and the agent goes on serving.
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
