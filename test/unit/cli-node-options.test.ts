// Node 20 scans a script's own arguments for `--env-file` and applies NODE_OPTIONS from that
// file before the script runs (nodejs/node#54232): `wheellock run --env-file guest.env`, whose
// file is meant for the guest and often comes from the project being sandboxed, would run
// `NODE_OPTIONS=--require x.js` in the host CLI. The `wheellock` command's interpreter line
// ends Node's options with `--`, so nothing after it is read as one.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const BIN = join(import.meta.dirname, "../../dist/cli/main.cjs");

test("an --env-file argument is the CLI's, never Node's: its NODE_OPTIONS do not run in the host", (t) => {
  assert.ok(existsSync(BIN), `build first: ${BIN}`);

  const dir = mkdtempSync(join(tmpdir(), "wheellock-envfile-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const marker = join(dir, "PWNED");
  writeFileSync(
    join(dir, "pwn.cjs"),
    `require("fs").writeFileSync(${JSON.stringify(marker)}, "ran")`,
  );
  const envFile = join(dir, "guest.env");
  writeFileSync(envFile, `GUEST_VAR=1\nNODE_OPTIONS=--require ${join(dir, "pwn.cjs")}\n`);
  for (const args of [
    ["list", `--env-file=${envFile}`],
    ["list", "--env-file", envFile],
    ["run", "--env-file", join(dir, "missing.env"), "--bogus"],
  ]) {
    // As a user runs it: the file itself, through its interpreter line.
    const r = spawnSync(BIN, args, {
      encoding: "utf8",
      timeout: 30_000,
      env: { ...process.env, WHEELLOCK_DATA_DIR: join(dir, "data") },
    });
    assert.equal(existsSync(marker), false, `host code ran for: ${args.join(" ")}`);
    // Answered by wheellock (a usage error for these), not by Node ("node: ...: not found").
    assert.doesNotMatch(r.stderr, /^node:/m, r.stderr);
    assert.match(r.stderr, /wheellock|error/i, r.stderr);
  }
});
