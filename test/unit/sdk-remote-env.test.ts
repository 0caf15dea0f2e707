// A program whose environment names a node (WHEELLOCK_REMOTE) never boots a sandbox on its own
// machine by accident: `Sandbox.create(options)` without `remote` refuses with one line saying
// how to go to the node (`remote: true`); it booted a local VM silently (review13 F8).
import { afterEach, test } from "node:test";
import assert from "node:assert/strict";
import { ErrInvalidConfig, Sandbox } from "../../src/index.js";

const saved = { remote: process.env.WHEELLOCK_REMOTE, token: process.env.WHEELLOCK_TOKEN };
afterEach(() => {
  for (const [key, value] of [
    ["WHEELLOCK_REMOTE", saved.remote],
    ["WHEELLOCK_TOKEN", saved.token],
  ] as const)
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
});

test("create without remote, WHEELLOCK_REMOTE set: refused, nothing boots here", async () => {
  process.env.WHEELLOCK_REMOTE = "http://127.0.0.1:1";
  process.env.WHEELLOCK_TOKEN = "t".repeat(43);
  // memoryMb -1 would be refused by the local planner with another message: the check on the
  // environment comes first, before anything is planned or booted.
  await assert.rejects(
    Sandbox.create({ memoryMb: -1 }),
    (err: Error) =>
      err instanceof ErrInvalidConfig &&
      /WHEELLOCK_REMOTE is set: pass remote: true/.test(err.message),
  );
});

test("remote: true with WHEELLOCK_REMOTE set goes to that node", async () => {
  process.env.WHEELLOCK_REMOTE = "http://127.0.0.1:1";
  process.env.WHEELLOCK_TOKEN = "t".repeat(43);
  await assert.rejects(
    Sandbox.create({ remote: true }),
    /not reachable|ECONNREFUSED|127\.0\.0\.1:1/,
  );
});
