import { test } from "node:test";
import assert from "node:assert/strict";
import { Command } from "commander";
import {
  addNetworkOptions,
  networkSandboxOptions,
  type NetworkFlags,
} from "../../src/cli/network-flags.js";
import { ErrInvalidConfig } from "../../src/errors.js";

function parse(argv: string[]) {
  const cmd = addNetworkOptions(new Command("run").exitOverride());
  cmd.parse(argv, { from: "user" });
  return networkSandboxOptions(cmd.opts<NetworkFlags>());
}

test("network flags map to sandbox options", () => {
  assert.deepEqual(parse([]), {});
  assert.deepEqual(parse(["--no-network"]), { noNetwork: true });
  assert.deepEqual(
    parse(["--allow-private-host", "--resolve", "a.test:127.0.0.1", "--resolve", "B.test:1.2.3.4"]),
    { allowPrivateHosts: true, resolveOverrides: { "a.test": "127.0.0.1", "B.test": "1.2.3.4" } },
  );
  assert.throws(() => parse(["--resolve", "no-colon"]), ErrInvalidConfig);
  assert.throws(() => parse(["--resolve", "name:"]), ErrInvalidConfig);
});
