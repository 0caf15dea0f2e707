import { test } from "node:test";
import assert from "node:assert/strict";
import { resolveSandboxOptions } from "../../src/config/index.js";
import { ErrInvalidConfig } from "../../src/errors.js";

const resolve = (o: Parameters<typeof resolveSandboxOptions>[0]) =>
  resolveSandboxOptions(o, {}, 4, "vm-0123abcd");

test("network options: resolve overrides are lower-cased and checked", () => {
  const r = resolve({ resolveOverrides: { "Files.Test.": "127.0.0.1" }, allowPrivateHosts: true });
  assert.deepEqual(r.resolveOverrides, { "files.test": "127.0.0.1" });
  assert.equal(r.allowPrivateHosts, true);
  const bads: Record<string, string>[] = [
    { "a b": "1.2.3.4" },
    { "x\u0000.test": "1.2.3.4" },
    { ok: "::1" },
    { ok: "1.2.3" },
  ];
  for (const bad of bads) assert.throws(() => resolve({ resolveOverrides: bad }), ErrInvalidConfig);
});

test("network options: noNetwork with a policy option is an error", () => {
  assert.equal(resolve({ noNetwork: true }).noNetwork, true);
  assert.throws(() => resolve({ noNetwork: true, allowPrivateHosts: true }), /noNetwork/);
  assert.throws(
    () => resolve({ noNetwork: true, resolveOverrides: { "a.test": "1.2.3.4" } }),
    /noNetwork/,
  );
});
