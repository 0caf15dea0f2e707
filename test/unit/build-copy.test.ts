// Builds that need no VM (no RUN): COPY/ADD/WORKDIR and the config instructions, multi-stage
// COPY --from, .dockerignore, the cache, context escapes, the secret scan, --output, and
// interrupts. The image lands in a private store and is checked in its flattened ext4.
import assert from "node:assert/strict";
import {
  createReadStream,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { buildImage, type BuildOptions } from "../../src/build/index.js";
import { ImageStore, importImage } from "../../src/image/index.js";
import { catIn, readlinkIn, statIn } from "../helpers/ext4-inspect.js";
import { busyboxEntries, dockerSaveTar, layerTar } from "../helpers/oci-build.js";

const work = mkdtempSync(join(tmpdir(), "wl-build-copy-"));
after(() => rmSync(work, { recursive: true, force: true }));
const store = new ImageStore(join(work, "store"));
const cacheDir = join(work, "cache");
const ctx = join(work, "ctx");
const BASE = "wl-unit-base:1";
const OUT = "docker.io/library/wl-unit-out:1";

before(async () => {
  const tar = await dockerSaveTar(
    [
      await layerTar([
        ...busyboxEntries(),
        { name: "usr/", type: "directory" },
        { name: "usr/lib/", type: "directory" },
        { name: "lib", type: "symlink", linkname: "usr/lib" },
      ]),
    ],
    { Env: ["PATH=/bin", "BASE_ENV=1"], Cmd: ["sh"] },
    "x:1",
  );
  await importImage(BASE, { store, source: Readable.from([tar]) });
  mkdirSync(join(ctx, "dir/sub"), { recursive: true });
  writeFileSync(join(ctx, "a.txt"), "A\n");
  writeFileSync(join(ctx, "b.txt"), "B\n");
  writeFileSync(join(ctx, "dir/sub/deep"), "deep\n", { mode: 0o755 });
  writeFileSync(join(ctx, "dir/ignored.log"), "no\n");
  writeFileSync(join(ctx, "secret.txt"), "token\n");
  symlinkSync("/etc/passwd", join(ctx, "escape-link"));
  symlinkSync("a.txt", join(ctx, "inner-link"));
  symlinkSync("deep", join(ctx, "dir/sub/link"));
  writeFileSync(join(ctx, ".dockerignore"), "*.log\n**/*.log\n!dir/keep.log\nsecret*\n");
  writeFileSync(join(ctx, "dir/keep.log"), "kept\n");
});

const build = (dockerfileText: string, more: Partial<BuildOptions> = {}) =>
  buildImage({ context: ctx, dockerfileText, store, cacheDir, tags: ["wl-unit-out:1"], ...more });

async function ext4(): Promise<string> {
  const rec = await store.get(OUT);
  assert.ok(rec, "record stored");
  return store.ext4Path(rec);
}

const MAIN = [
  "ARG WHO=world",
  `FROM ${BASE}`,
  "ARG WHO",
  'ENV GREETING="hello $WHO" PATH=/bin:/usr/bin',
  'LABEL org.example.k="v 1"',
  "WORKDIR /app",
  "COPY a.txt *.txt ./",
  "COPY --chown=app:app --chmod=0640 dir/ /data/",
  "COPY inner-link /links/",
  "COPY a.txt /lib/",
  "COPY <<EOF /etc/motd",
  "$GREETING",
  "EOF",
  "USER app",
  "EXPOSE 8080 53/udp",
  'VOLUME ["/data"]',
  "STOPSIGNAL SIGTERM",
  'HEALTHCHECK --interval=5s --retries=2 CMD ["true"]',
  'SHELL ["/bin/sh", "-ec"]',
  'ENTRYPOINT ["/bin/echo"]',
  'CMD ["hi"]',
  "",
].join("\n");

describe("a build without RUN", () => {
  test("COPY semantics, config instructions, stored like a pulled image", async () => {
    const r = await build(MAIN, { buildArgs: { WHO: "there" } });
    assert.equal(r.references[0], OUT);
    const rec = r.record;
    assert.equal(rec?.source, "build");
    assert.deepEqual(rec?.config.cmd, ["hi"]);
    assert.deepEqual(rec?.config.entrypoint, ["/bin/echo"]);
    assert.equal(rec?.config.user, "app");
    assert.equal(rec?.config.workdir, "/app");
    assert.equal(rec?.config.env.GREETING, "hello there");
    assert.equal(rec?.config.env.BASE_ENV, "1");
    const cfg = JSON.parse((await store.blobs.read(r.configDigest)).toString()) as {
      created: string;
      config: Record<string, unknown>;
    };
    assert.equal(cfg.created, "1970-01-01T00:00:00Z");
    assert.deepEqual(cfg.config.ExposedPorts, { "53/udp": {}, "8080/tcp": {} });
    assert.deepEqual(cfg.config.Volumes, { "/data": {} });
    assert.deepEqual(cfg.config.Labels, { "org.example.k": "v 1" });
    assert.equal(cfg.config.StopSignal, "SIGTERM");
    assert.deepEqual(cfg.config.Healthcheck, { Test: ["CMD", "true"], Interval: 5e9, Retries: 2 });
    assert.deepEqual(cfg.config.Shell, ["/bin/sh", "-ec"]);
    const img = await ext4();
    assert.equal(catIn(img, "/app/a.txt"), "A\n");
    assert.equal(catIn(img, "/app/b.txt"), "B\n");
    assert.equal(catIn(img, "/data/sub/deep"), "deep\n");
    assert.equal(statIn(img, "/data/sub/deep")?.uid, 1000);
    assert.equal(statIn(img, "/data/sub/deep")?.mode, 0o640);
    assert.equal(catIn(img, "/data/keep.log"), "kept\n", "!exception re-includes");
    assert.equal(statIn(img, "/data/ignored.log"), undefined, ".dockerignore");
    assert.equal(readlinkIn(img, "/data/sub/link"), "deep", "links inside a copied dir stay links");
    assert.equal(catIn(img, "/links/inner-link"), "A\n", "a source that is a link is followed");
    assert.equal(catIn(img, "/usr/lib/a.txt"), "A\n", "COPY into /lib/ follows lib -> usr/lib");
    assert.equal(readlinkIn(img, "/lib"), "usr/lib");
    assert.equal(catIn(img, "/etc/motd"), "hello there\n");
    assert.equal(statIn(img, "/app/a.txt")?.uid, 0);
  });

  test("unchanged rebuild: all cached, same digest; one file changed: only the steps after it", async () => {
    const first = await build(MAIN, { buildArgs: { WHO: "there" } });
    assert.equal(first.stepsRun, 0);
    const fresh = await build(MAIN, { buildArgs: { WHO: "there" }, noCache: true });
    assert.equal(fresh.digest, first.digest, "reproducible: --no-cache gives the same digest");
    writeFileSync(join(ctx, "dir/sub/deep"), "changed\n", { mode: 0o755 });
    try {
      const changed = await build(MAIN, { buildArgs: { WHO: "there" } });
      assert.equal(changed.stepsRun, 4, "the dir/ COPY and the three COPY steps after it");
      assert.notEqual(changed.digest, first.digest);
      assert.equal(catIn(await ext4(), "/data/sub/deep"), "changed\n");
      const arg = await build(MAIN, { buildArgs: { WHO: "else" } });
      assert.ok(arg.stepsRun >= 1, "a different build arg invalidates");
    } finally {
      writeFileSync(join(ctx, "dir/sub/deep"), "deep\n", { mode: 0o755 });
    }
  });

  test("multi-stage: COPY --from an earlier stage, only needed stages built", async () => {
    const r = await build(
      [
        `FROM ${BASE} AS one`,
        "COPY a.txt /from-one",
        `FROM ${BASE} AS unused`,
        "COPY missing-file /x",
        "FROM scratch",
        "COPY --from=one /from-one /got",
        "COPY --from=one /etc/passwd /passwd",
        "",
      ].join("\n"),
    );
    assert.equal(r.stepsRun + r.stepsCached, 3);
    const img = await ext4();
    assert.equal(catIn(img, "/got"), "A\n");
    assert.match(catIn(img, "/passwd"), /^root:x:0:0/);
    assert.equal(statIn(img, "/bin"), undefined, "scratch has nothing else");
  });

  test("context escapes, ignored and missing sources: one error each, nothing stored", async () => {
    await store.remove(OUT);
    const cases: Array<[string, RegExp]> = [
      ["COPY ../etc/passwd /x", /\.\.\/etc\/passwd is outside the build context/],
      ["COPY /etc/passwd /x", /\/etc\/passwd is an absolute path/],
      ["COPY escape-link /x", /escape-link resolves outside the build context \(\/etc\/passwd\)/],
      ["COPY secret.txt /x", /secret.txt is excluded by .dockerignore/],
      ["COPY nothing-here /x", /nothing-here: no such file or directory in the build context/],
      ["COPY a.txt b.txt /x", /destination must be a directory ending in \//],
      ["COPY --chown=nobody a.txt /x", /unknown user nobody/],
    ];
    for (const [line, re] of cases) {
      await assert.rejects(build(`FROM ${BASE}\n${line}\n`), (e: Error) => {
        assert.match(e.message, /^Dockerfile line 2 \(COPY\): /);
        assert.match(e.message, re);
        return true;
      });
    }
    assert.equal(await store.get(OUT), undefined);
    const scratch = readdirSync(join(store.root, "tmp")).filter((n) => n.startsWith("build-"));
    assert.deepEqual(scratch, []);
  });

  test("a layer or config holding a secret's value is refused", async () => {
    const secrets = { tok: { value: "hunter2-very-secret" } };
    writeFileSync(join(ctx, "leak.txt"), "has hunter2-very-secret inside\n");
    try {
      await assert.rejects(
        build(`FROM ${BASE}\nCOPY leak.txt /leak\n`, { secrets }),
        /would contain the value of secret "tok"/,
      );
      await assert.rejects(
        build(`FROM ${BASE}\nARG T\nENV LEAK=$T\n`, {
          secrets,
          buildArgs: { T: "hunter2-very-secret" },
        }),
        /image config would contain the value of secret "tok"/,
      );
      assert.equal(await store.get(OUT), undefined);
    } finally {
      rmSync(join(ctx, "leak.txt"));
    }
  });

  test("--output oci and docker archives import back to the same image", async () => {
    for (const type of ["oci", "docker"] as const) {
      const dest = join(work, `out-${type}.tar`);
      const r = await build(`FROM ${BASE}\nCOPY a.txt /a\n`, { output: { type, dest } });
      const rec = await importImage(`wl-unit-imported-${type}:1`, {
        store,
        source: createReadStream(dest),
      });
      assert.equal(rec.configDigest, r.configDigest);
      assert.equal(catIn(store.ext4Path(rec), "/a"), "A\n");
    }
  });

  test("an interrupted build stores nothing and the cache stays usable", async () => {
    await store.remove(OUT);
    const controller = new AbortController();
    const df = `FROM ${BASE}\nCOPY a.txt /int-a\nCOPY b.txt /int-b\n`;
    await assert.rejects(
      build(df, {
        signal: controller.signal,
        noCache: true,
        progress: {
          start: () => undefined,
          output: () => undefined,
          cached: () => undefined,
          done: () => controller.abort(),
          failed: () => undefined,
          note: () => undefined,
        },
      }),
      /build interrupted/,
    );
    assert.equal(await store.get(OUT), undefined);
    const again = await build(df);
    assert.equal(again.stepsCached, 1, "the step finished before the interrupt is reused");
    assert.equal(again.stepsRun, 1);
  });
});
