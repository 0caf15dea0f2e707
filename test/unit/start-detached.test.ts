import assert from "node:assert/strict";
import { test } from "node:test";
import { ErrInvalidConfig, MemoryProvider, Sandbox } from "../../src/index.js";
import { isolateDataDir } from "../helpers/vm.js";

isolateDataDir();

test("startDetached refuses what cannot cross to the supervisor process, before starting anything", async () => {
  await assert.rejects(
    Sandbox.startDetached({
      networkHooks: [{ phase: "after", hosts: ["a.test"], hook: () => undefined }],
    }),
    {
      code: "ErrInvalidConfig",
      message: /options\.networkHooks\.0\.hook: callbacks cannot be passed to a detached sandbox/,
    },
  );
  await assert.rejects(
    Sandbox.startDetached({
      mounts: { "/mem": { type: "provider", provider: new MemoryProvider() } },
    }),
    {
      code: "ErrInvalidConfig",
      message: /options\.mounts\.\/mem\.provider: objects such as custom providers/,
    },
  );
});

test("a start that fails in the supervisor throws the error class and code an in-process start would", async () => {
  // The image reference is checked when the sandbox resolves its image, i.e. in the
  // supervisor, before any VM: `Sandbox.create` throws ErrInvalidConfig for it, and so must
  // `startDetached` (it used to be an ErrVMNotRunning carrying the message's text).
  await assert.rejects(Sandbox.create({ image: "../../etc" }), ErrInvalidConfig);
  await assert.rejects(Sandbox.startDetached({ image: "../../etc" }), (err: unknown) => {
    assert.ok(err instanceof ErrInvalidConfig, `got ${String(err)}`);
    assert.equal(err.code, "ErrInvalidConfig");
    assert.match(err.message, /^invalid configuration: invalid image reference "\.\.\/\.\.\/etc"/);
    return true;
  });
});
