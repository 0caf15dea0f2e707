// Attack: `wheellock build ~` with `COPY . /ctx` put wheellock's data dir (CA and checkpoint
// keys, volumes, records) into an image layer, seen by every later RUN step and pushed with
// the image (review rev19b F1). A source that holds or lies in an own dir is refused.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BuildContext } from "../../src/build/context.js";
import { ErrBuild } from "../../src/errors.js";

const scratch = mkdtempSync(join(tmpdir(), "wheellock-build-own-"));
process.on("exit", () => rmSync(scratch, { recursive: true, force: true }));
const home = join(scratch, "home");
const data = join(home, ".local", "share", "wheellock");
process.env.WHEELLOCK_DATA_DIR = data;
process.env.WHEELLOCK_CACHE_DIR = join(scratch, "cache");
process.env.WHEELLOCK_RUN_DIR = join(scratch, "run");
mkdirSync(join(data, "ca"), { recursive: true });
writeFileSync(join(data, "ca", "ca.key"), "secret");
mkdirSync(join(home, "project"));
writeFileSync(join(home, "project", "app.js"), "1");

test("COPY of a context source that holds or lies in the data dir is refused; the rest copies", async () => {
  const ctx = await BuildContext.open(home);
  for (const source of [".", ".local", ".local/share/wheellock/ca"]) {
    await assert.rejects(
      ctx.select([source], "COPY"),
      (err: unknown) =>
        err instanceof ErrBuild &&
        /wheellock's data dir .*an image must not carry it/.test(err.message),
      source,
    );
  }
  const [project] = await ctx.select(["project"], "COPY");
  assert.deepEqual(project?.files.map((f) => f.rel).sort(), ["", "app.js"]);
});
