// Every directory wheellock creates is 0700 (issue 19, finding 9): the data dir holds sandbox
// records, volumes and the CA key; the cache holds pulled images. Checked through the CLI with
// fresh data and cache dirs that do not exist yet, under the usual 022 umask.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { makePrivateDir } from "../../src/paths.js";
import { scratchDir } from "../helpers/vm.js";

const CLI = ["--import", "tsx", join(import.meta.dirname, "../../src/cli/main.ts")];

function wheellock(args: string[], env: Record<string, string>) {
  const r = spawnSync(process.execPath, [...CLI, ...args], {
    encoding: "utf8",
    env: { ...process.env, ...env },
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const mode = (path: string): string => (statSync(path).mode & 0o777).toString(8);

test("volume create as the first command makes the data dir and volumes dir 0700", () => {
  const data = join(scratchDir("wheellock-private-"), "nested", "data");
  const r = wheellock(["volume", "create", "first", "--size", "16"], { WHEELLOCK_DATA_DIR: data });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(mode(data), "700");
  assert.equal(mode(join(data, "volumes")), "700");
  // Parents it had to create as well: nobody else lists what is in them.
  assert.equal(mode(join(data, "..")), "700");
});

test("diagnose as the first command makes the data and cache dirs 0700", () => {
  const root = scratchDir("wheellock-private-");
  const env = { WHEELLOCK_DATA_DIR: join(root, "data"), WHEELLOCK_CACHE_DIR: join(root, "cache") };
  wheellock(["diagnose", "--json"], env);
  assert.equal(mode(env.WHEELLOCK_DATA_DIR), "700");
  assert.equal(mode(env.WHEELLOCK_CACHE_DIR), "700");
});

test("makePrivateDir: 0700 whatever the umask allows, and an existing dir keeps its mode", () => {
  const root = scratchDir("wheellock-private-");
  const previous = process.umask(0);
  try {
    assert.equal(mode(makePrivateDir(join(root, "a", "b"))), "700");
    assert.equal(mode(join(root, "a")), "700");
  } finally {
    process.umask(previous);
  }
  const shared = join(root, "shared");
  mkdirSync(shared, { mode: 0o755 });
  assert.equal(mode(makePrivateDir(shared)), "755");
});
