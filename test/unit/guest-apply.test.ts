// MOUNT after a boot or restore: a failure or a guest that never answers fails the start with
// one clear error (the agent binds on its main thread, with no timeout of its own).
import { test } from "node:test";
import assert from "node:assert/strict";
import type { GuestAgent } from "../../src/channel/index.js";
import { mountWithin } from "../../src/sandbox/guest-apply.js";

function agentWhoseMount(result: () => Promise<void>): GuestAgent {
  return { mount: () => result() } as unknown as GuestAgent;
}

test("a MOUNT that is never answered fails the start after the timeout", async () => {
  const started = Date.now();
  await assert.rejects(
    mountWithin(
      agentWhoseMount(() => new Promise<void>(() => undefined)),
      ["/w"],
      50,
    ),
    { code: "ErrInvalidConfig", message: /mounts: mounts did not finish/ },
  );
  assert.ok(Date.now() - started >= 45);
});

test("a MOUNT error names itself; an answered MOUNT passes", async () => {
  await assert.rejects(
    mountWithin(
      agentWhoseMount(() => Promise.reject(new Error("mount /w failed"))),
      ["/w"],
      1000,
    ),
    { code: "ErrInvalidConfig", message: "invalid configuration: mounts: mount /w failed" },
  );
  await mountWithin(
    agentWhoseMount(() => Promise.resolve()),
    ["/w"],
    1000,
  );
});
