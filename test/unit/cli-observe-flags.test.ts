// `run`'s observe flags (docs/OBSERVE.md): values map to sandbox options, and a bad value is
// refused by the flag's own name and unit, not by the SDK field behind it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Command, CommanderError } from "commander";
import {
  addObserveOptions,
  observeSandboxOptions,
  type ObserveFlags,
} from "../../src/cli/observe-flags.js";

function parse(argv: string[]) {
  const cmd = addObserveOptions(
    new Command("run").exitOverride().configureOutput({ writeErr: () => undefined }),
  );
  cmd.parse(argv, { from: "user" });
  return observeSandboxOptions(cmd.opts<ObserveFlags>());
}

function refused(argv: string[]): string {
  try {
    parse(argv);
  } catch (err) {
    assert.ok(err instanceof CommanderError, String(err));
    return err.message;
  }
  assert.fail(`${argv.join(" ")} was accepted`);
}

test("observe flags map to sandbox options", () => {
  assert.deepEqual(
    parse([
      "--approve",
      "--approve-timeout",
      "600",
      "--max-egress-bytes",
      "1",
      "--max-cpu-seconds",
      "0.5",
      "--max-requests",
      "3",
    ]),
    {
      approval: { timeoutMs: 600_000 },
      maxEgressBytes: 1,
      maxCpuSeconds: 0.5,
      maxRequests: 3,
    },
  );
});

test("out-of-range values are refused in the flag's name and unit", () => {
  assert.match(refused(["--approve-timeout", "0"]), /--approve-timeout must be at least 1/);
  assert.match(
    refused(["--approve-timeout", "601"]),
    /--approve-timeout must be at most 600 \(seconds\), got "601"/,
  );
  assert.match(refused(["--max-egress-bytes", "0"]), /--max-egress-bytes must be at least 1/);
  assert.match(refused(["--max-requests", "0"]), /--max-requests must be at least 1/);
  assert.match(refused(["--max-cpu-seconds", "0"]), /--max-cpu-seconds must be more than 0/);
  assert.match(refused(["--max-cpu-seconds", "0.0"]), /--max-cpu-seconds must be more than 0/);
});
