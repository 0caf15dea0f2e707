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

test("a malformed image reference is refused by the plan, before any supervisor starts", async () => {
  await assert.rejects(Sandbox.create({ image: "../../etc" }), ErrInvalidConfig);
  await assert.rejects(Sandbox.startDetached({ image: "../../etc" }), (err: unknown) => {
    assert.ok(err instanceof ErrInvalidConfig, `got ${String(err)}`);
    assert.match(err.message, /^invalid configuration: invalid image reference "\.\.\/\.\.\/etc"/);
    return true;
  });
  assert.deepEqual(await Sandbox.list(), [], "no sandbox record was left behind");
});

test("a start that fails in the supervisor throws the error class and code an in-process start would", async () => {
  // A well-formed reference to a registry that is not there: resolving the image (in the
  // supervisor, before any VM) fails. startDetached used to turn every such failure into an
  // ErrVMNotRunning carrying the message's text.
  const image = "127.0.0.1:1/absent:latest";
  const inProcess = await Sandbox.create({ image }).then(
    () => assert.fail("an unreachable registry cannot give an image"),
    (err: unknown) => err as Error & { code?: string },
  );
  assert.notEqual(inProcess.code, undefined, `untyped error: ${String(inProcess)}`);
  await assert.rejects(Sandbox.startDetached({ image }), (err: unknown) => {
    assert.ok(err instanceof inProcess.constructor, `got ${String(err)}`);
    assert.equal((err as { code?: string }).code, inProcess.code);
    return true;
  });
});
