import assert from "node:assert/strict";
import { test } from "node:test";
import { MemoryProvider, Sandbox } from "../../src/index.js";

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
