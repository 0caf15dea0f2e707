// wheellock build with real sandboxes: RUN steps (heredoc, secret file, cache mount, whiteouts,
// opaque dirs, hard links, setuid, owners, FIFOs), a built image that runs with its
// ENTRYPOINT/CMD/USER/WORKDIR, cache hits that boot nothing, a changed file re-running only
// the steps after it, a failing RUN, secrets (files and placeholders) that never reach a layer
// or outlive their step in a cache mount, and the network each RUN gets (private ranges
// blocked by default, none with --network=none). One base image (imported, no registry), ten
// VM boots in all.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import { gunzipSync } from "node:zlib";
import { buildImage, plainBuildProgress, type BuildOptions } from "../../src/build/index.js";
import { ImageStore, importImage } from "../../src/image/index.js";
import { catIn, readlinkIn, statIn } from "../helpers/ext4-inspect.js";
import { busyboxEntries, dockerSaveTar, layerTar } from "../helpers/oci-build.js";
import { childQemuPids, isolateDataDir, runDirEntries } from "../helpers/vm.js";

const dataDir = isolateDataDir();
const work = mkdtempSync(join(tmpdir(), "wl-build-vm-"));
const ctx = join(work, "ctx");
const cacheDir = join(work, "cache");
const store = new ImageStore();
const BASE = `wl-build-vmbase:${process.pid}`;
const TAG = `wl-build-vmout:${process.pid}`;
const SECRET = "s3cr3t-value-that-must-not-leak";
const BUNDLE = "# the image's own CA bundle\n";
const APPLETS = [
  "rm",
  "mkdir",
  "chmod",
  "chown",
  "ln",
  "mknod",
  "wc",
  "ls",
  "cat",
  "printf",
  "true",
  "wget",
  "timeout",
];
let log = "";

before(async () => {
  const tar = await dockerSaveTar(
    [
      await layerTar([
        ...busyboxEntries(),
        ...APPLETS.map((a) => ({
          name: `bin/${a}`,
          type: "symlink" as const,
          linkname: "busybox",
        })),
        { name: "etc/old", content: "old\n" },
        { name: "etc/dir/lower", content: "lower\n" },
        { name: "etc/ssl/certs/ca-certificates.crt", content: BUNDLE },
      ]),
    ],
    { Env: ["PATH=/bin"] },
    "x:1",
  );
  await importImage(BASE, { store, source: Readable.from([tar]) });
  mkdirSync(ctx, { recursive: true });
  writeFileSync(join(ctx, "app.sh"), '#!/bin/sh\necho "uid=$(id -u) pwd=$(pwd) args=$*"\n');
  writeFileSync(join(ctx, "Dockerfile"), MAIN);
});

after(async () => {
  for (const ref of [BASE, TAG, `${TAG}-net`])
    await store.remove(`docker.io/library/${ref}`).catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
});

const MAIN = [
  `FROM ${BASE}`,
  "ARG GREETING=hi",
  "RUN --mount=type=secret,id=tok --mount=type=cache,target=/cache <<EOF",
  "set -e",
  "mkdir -p /srv/app/bin",
  "wc -c < /run/secrets/tok > /srv/app/secret-len",
  'echo "$GREETING" > /srv/app/greeting',
  "rm /etc/old",
  "rm -r /etc/dir && mkdir /etc/dir && echo new > /etc/dir/new",
  "echo data > /srv/app/data && ln /srv/app/data /srv/app/data-link",
  "chmod 4755 /srv/app/data && chown 1000:1000 /srv/app/greeting",
  "mknod /srv/app/fifo p",
  "echo run >> /cache/count",
  "EOF",
  "COPY app.sh /srv/app/bin/",
  'RUN --network=none ["/bin/sh", "-c", "chmod +x /srv/app/bin/app.sh && ls /srv/app > /srv/app/listing"]',
  "WORKDIR /srv/app",
  "USER app",
  'ENTRYPOINT ["/srv/app/bin/app.sh"]',
  'CMD ["default-arg"]',
  "",
].join("\n");

const opts = (more: Partial<BuildOptions> = {}): BuildOptions => ({
  context: ctx,
  tags: [TAG],
  cacheDir,
  buildArgs: { GREETING: "hello" },
  secrets: { tok: { value: SECRET } },
  progress: plainBuildProgress((t) => (log += t)),
  ...more,
});

/** Every blob of the stored image (layers uncompressed, config, manifest). */
async function imageBytes(ref: string): Promise<Buffer[]> {
  const rec = await store.get(`docker.io/library/${ref}`);
  assert.ok(rec);
  const out = [await store.blobs.read(rec.configDigest), await store.blobs.read(rec.digest)];
  for (const l of rec.layers) {
    const blob = await store.blobs.read(l.digest);
    // The base's layers are stored as imported (docker save: plain tar); built ones gzip.
    out.push(l.mediaType.endsWith("gzip") ? gunzipSync(blob) : blob);
  }
  return out;
}

const cli = (args: string[]) =>
  promisify(execFile)(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], {
    encoding: "utf8",
    timeout: 300_000,
  }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => e,
  );

// TCG boots take tens of seconds; nothing here may wait longer than this for good.
describe("wheellock build with sandboxes", { timeout: 15 * 60_000 }, () => {
  test("RUN steps become layers: whiteouts, opaque dirs, hard links, setuid, owners, FIFOs", async () => {
    const r = await buildImage(opts());
    assert.equal(r.stepsRun, 4, "RUN, COPY, RUN, WORKDIR");
    const rec = await store.get(`docker.io/library/${TAG}`);
    assert.ok(rec);
    const img = store.ext4Path(rec);
    assert.equal(statIn(img, "/etc/old"), undefined, "rm in RUN is a whiteout");
    assert.equal(statIn(img, "/etc/dir/lower"), undefined, "a re-made dir is opaque");
    assert.equal(catIn(img, "/etc/dir/new"), "new\n");
    assert.equal(catIn(img, "/srv/app/greeting"), "hello\n", "build arg in RUN's env");
    assert.equal(statIn(img, "/srv/app/greeting")?.uid, 1000);
    assert.equal(statIn(img, "/srv/app/data")?.mode, 0o4755);
    assert.equal(statIn(img, "/srv/app/data")?.inode, statIn(img, "/srv/app/data-link")?.inode);
    assert.match(statIn(img, "/srv/app/fifo")?.type ?? "", /FIFO/);
    assert.equal(catIn(img, "/srv/app/secret-len").trim(), String(SECRET.length));
    assert.equal(catIn(img, "/srv/app/listing").split("\n").includes("bin"), true);
    // What the sandbox itself made is not the step's: no secret mount point, no resolv.conf.
    assert.equal(statIn(img, "/run/secrets"), undefined);
    assert.equal(statIn(img, "/etc/resolv.conf"), undefined);
    assert.equal(statIn(img, "/cache"), undefined);
    // The cache mount's directory stays on the host for the next build.
    const mounts = readdirSync(join(cacheDir, "mounts"));
    assert.equal(readFileSync(join(cacheDir, "mounts", mounts[0] ?? "", "count"), "utf8"), "run\n");
    assert.deepEqual(childQemuPids(), []);
    assert.deepEqual(runDirEntries(dataDir), []);
  });

  test("no blob or config of the image holds the secret value (and the scan finds what is there)", async () => {
    const blobs = await imageBytes(TAG);
    assert.ok(!blobs.some((b) => b.includes(SECRET)), "secret value in the image");
    // The same scan finds content that is in a layer: it can fail.
    assert.ok(blobs.some((b) => b.includes("hello\n")));
  });

  test("the built image runs with its ENTRYPOINT, CMD, USER and WORKDIR", async () => {
    const out = await cli(["run", "--image", TAG]);
    assert.equal(out.stdout, "uid=1000 pwd=/srv/app args=default-arg\n");
  });

  test("unchanged rebuild boots no VM; a changed file re-runs only the steps after it", async () => {
    const t0 = Date.now();
    const same = await buildImage(opts());
    const unchangedMs = Date.now() - t0;
    assert.equal(same.stepsRun, 0);
    assert.ok(unchangedMs < 5000, `unchanged rebuild took ${unchangedMs} ms`);
    writeFileSync(join(ctx, "app.sh"), '#!/bin/sh\necho "v2 uid=$(id -u) args=$*"\n');
    const changed = await buildImage(opts());
    assert.equal(changed.stepsCached, 1, "the first RUN is reused");
    assert.equal(changed.stepsRun, 3, "COPY, the RUN after it, WORKDIR (no VM)");
  });

  test("a failing RUN: its output shown, its exit code returned, nothing left behind", async () => {
    const df = join(work, "Dockerfile.fail");
    writeFileSync(df, `FROM ${BASE}\nRUN echo failing-output && exit 3\n`);
    const out = await cli(["build", "--progress", "plain", "-f", df, "-t", `${TAG}-fail`, ctx]);
    assert.equal(out.code, 3);
    assert.match(out.stderr, /failing-output/);
    assert.match(
      out.stderr,
      /wheellock: Dockerfile line 2 \(RUN\) failed: the command exited with code 3/,
    );
    assert.equal(await store.get(`docker.io/library/${TAG}-fail`), undefined);
    assert.deepEqual(childQemuPids(), []);
  });

  test("intercept mode: a host-bound secret is a placeholder, the CA stays out of the image", async () => {
    const df = join(work, "Dockerfile.net");
    writeFileSync(
      df,
      `FROM ${BASE}\nRUN --mount=type=secret,id=api,env=API_KEY sh -c 'echo "$API_KEY" > /seen; cat /etc/ssl/certs/ca-certificates.crt > /bundle-seen'\n`,
    );
    const intercepted = (): Promise<unknown> =>
      buildImage(
        opts({
          dockerfile: df,
          tags: [`${TAG}-net`],
          allowHosts: ["example.com"],
          secrets: { api: { value: SECRET, hosts: ["api.example.com"] } },
        }),
      );
    await intercepted().then(
      () => assert.fail("copying the bundle (with the wheellock CA) into a layer must fail"),
      (e: Error) => assert.match(e.message, /would contain the wheellock intercept CA certificate/),
    );
    writeFileSync(
      df,
      `FROM ${BASE}\nRUN --mount=type=secret,id=api,env=API_KEY sh -c 'echo "$API_KEY" > /seen'\n`,
    );
    await intercepted();
    const rec = await store.get(`docker.io/library/${TAG}-net`);
    assert.ok(rec);
    const img = store.ext4Path(rec);
    const seen = catIn(img, "/seen").trim();
    assert.ok(seen.length > 0 && seen !== SECRET, "the guest saw a placeholder");
    assert.equal(catIn(img, "/etc/ssl/certs/ca-certificates.crt"), BUNDLE, "bundle as it was");
    assert.equal(statIn(img, "/etc/ssl/certs/wheellock-ca.crt"), undefined);
    assert.ok(!(await imageBytes(`${TAG}-net`)).some((b) => b.includes(SECRET)));
    assert.equal(readlinkIn(img, "/bin/sh"), "busybox");
  });

  test("a secret left in a cache mount fails the step and empties the mount", async () => {
    const df = join(work, "Dockerfile.cache-leak");
    writeFileSync(
      df,
      `FROM ${BASE}\nRUN --mount=type=secret,id=tok --mount=type=cache,id=leaky,target=/c sh -c 'cat /run/secrets/tok > /c/creds; echo kept > /c/other'\n`,
    );
    await assert.rejects(
      buildImage(opts({ dockerfile: df, tags: [`${TAG}-leak`] })),
      /left the value of secret "tok" in its cache mount \/c; the cache mount was emptied/,
    );
    const dir = join(
      cacheDir,
      "mounts",
      createHash("sha256").update("leaky").digest("hex").slice(0, 32),
    );
    assert.deepEqual(readdirSync(dir), []);
    assert.equal(await store.get(`docker.io/library/${TAG}-leak`), undefined);
  });

  test("RUN's network: private ranges blocked by default, no device with --network=none", async () => {
    // A server on the host's 127.0.0.1: the guest reaches it as the gateway only when private
    // hosts are allowed, so the allowed build shows the blocked ones could have reached it.
    const server = createServer((_req, res) => res.end("from the host\n"));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://10.0.2.2:${(server.address() as AddressInfo).port}/`;
    // `timeout`, not wget's own -T: busybox-static 1.35's `wget -T` crashes (SIGSEGV, 139).
    const fetch = (file: string) => `timeout 20 wget -q -O ${file} ${url}; echo $? > ${file}.rc`;
    const df = join(work, "Dockerfile.net-policy");
    const tag = `${TAG}-policy`;
    try {
      writeFileSync(
        df,
        [
          `FROM ${BASE}`,
          `RUN ${fetch("/open")}`,
          `RUN --network=none sh -c 'ls /sys/class/net > /nets; ${fetch("/none")}'`,
          "",
        ].join("\n"),
      );
      await buildImage(opts({ dockerfile: df, tags: [tag], allowPrivateHosts: true }));
      let img = store.ext4Path((await store.get(`docker.io/library/${tag}`)) ?? assert.fail());
      assert.equal(
        catIn(img, "/open"),
        "from the host\n",
        `reachable when private hosts are allowed (wget exit code ${catIn(img, "/open.rc").trim()})`,
      );
      assert.equal(catIn(img, "/nets"), "lo\n", "--network=none: no network device");
      assert.notEqual(catIn(img, "/none.rc").trim(), "0");
      writeFileSync(df, `FROM ${BASE}\nRUN ${fetch("/blocked")}\n`);
      await buildImage(opts({ dockerfile: df, tags: [tag] }));
      img = store.ext4Path((await store.get(`docker.io/library/${tag}`)) ?? assert.fail());
      assert.notEqual(catIn(img, "/blocked.rc").trim(), "0", "the default blocks private ranges");
      assert.ok((statIn(img, "/blocked")?.sizeBytes ?? 0) === 0);
    } finally {
      server.close();
      await store.remove(`docker.io/library/${tag}`).catch(() => undefined);
    }
    assert.deepEqual(childQemuPids(), []);
  });
});
