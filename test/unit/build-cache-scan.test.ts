// A RUN step's cache mounts are searched for the secret values its guest saw: contents (across
// read chunks), file names and link targets, never following a link out of the mount.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { emptyDir, findNeedlesInTree } from "../../src/build/steps/cache-scan.js";

const work = mkdtempSync(join(tmpdir(), "wl-cache-scan-"));
after(() => rmSync(work, { recursive: true, force: true }));
const SECRET = "s3cr3t-in-the-cache";
const needles = [{ label: 'the value of secret "tok"', bytes: Buffer.from(SECRET) }];

function tree(name: string, make: (dir: string) => void): string {
  const dir = join(work, name);
  mkdirSync(join(dir, "a/b"), { recursive: true });
  writeFileSync(join(dir, "a/clean"), "nothing here\n");
  make(dir);
  return dir;
}

test("a secret value in a file, a name or a link target is found; links are not followed", async () => {
  const outside = join(work, "outside");
  writeFileSync(outside, SECRET);
  const clean = tree("clean", (d) => symlinkSync(outside, join(d, "a/link-out")));
  assert.equal(await findNeedlesInTree(clean, needles), undefined, "a link is not followed");
  const big = Buffer.alloc(200_000, "x");
  // The value straddles the 64 KiB chunks the file is read in.
  const inFile = tree("file", (d) =>
    writeFileSync(
      join(d, "a/b/creds"),
      Buffer.concat([big.subarray(0, 65530), Buffer.from(SECRET), big]),
    ),
  );
  assert.equal(await findNeedlesInTree(inFile, needles), 'the value of secret "tok"');
  const inName = tree("name", (d) => writeFileSync(join(d, `a/${SECRET}`), ""));
  assert.equal(await findNeedlesInTree(inName, needles), 'the value of secret "tok"');
  const inLink = tree("link", (d) => symlinkSync(`/x/${SECRET}`, join(d, "a/l")));
  assert.equal(await findNeedlesInTree(inLink, needles), 'the value of secret "tok"');
  assert.equal(await findNeedlesInTree(inFile, []), undefined, "no secrets: nothing to find");
  await emptyDir(inFile);
  assert.deepEqual(readdirSync(inFile), []);
});
