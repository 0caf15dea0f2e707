// Options that cannot leave this process are refused with one line naming every one of them
// (issue 13 item 3), not only the first: a caller fixing one would meet the next, one by one.
import { test } from "node:test";
import assert from "node:assert/strict";
import { remoteOptionsJson } from "../../src/config/index.js";

class Provider {}

test("every callback and provider object is named, in one line", () => {
  const options = {
    networkIntercept: { onRequest: () => undefined, onResponse: () => undefined },
    vfsHooks: { before: () => 1 },
    mounts: { "/data": { type: "custom", provider: new Provider() } },
  };
  assert.throws(
    () => remoteOptionsJson(options),
    (err: Error) => {
      for (const path of [
        "options.networkIntercept.onRequest",
        "options.networkIntercept.onResponse",
        "options.vfsHooks.before",
        "options.mounts./data.provider",
      ])
        assert.ok(err.message.includes(path), `${path} not named in: ${err.message}`);
      assert.ok(!err.message.includes("\n"));
      return true;
    },
  );
});

test("plain options pass as JSON", () => {
  assert.equal(remoteOptionsJson({ noNetwork: true }), '{"noNetwork":true}');
});
