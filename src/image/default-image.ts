import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import {
  chmod,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  writeFile,
} from "node:fs/promises";
import { join } from "node:path";
import { ErrSetup } from "../errors.js";
import { withFileLock } from "../util/index.js";
import { pidAlive } from "../util/index.js";
import { runTool, runToolOk } from "../util/index.js";
import { findExecutable } from "../util/index.js";
import { debianMirrorsFor, mirrorSourceLines } from "./debian-mirror.js";
import { buildExt4FromDir } from "./ext4.js";
import { makePrivateDir } from "../paths.js";

export interface DefaultImage {
  ext4Path: string;
  /** "sha256:<hex>" of the ext4 file's bytes. */
  digest: string;
  sizeBytes: number;
}

/**
 * What goes into the default image. Bump `version` whenever the build steps below change in a
 * way this object does not capture, so old caches are not reused.
 * minbase (not essential) because it brings apt, which users expect in a Debian sandbox; the
 * excludes drop ~45 MB of translations, man pages and docs nobody reads inside a sandbox
 * (copyright files stay: licences travel with the binaries).
 */
const RECIPE = {
  version: 1,
  noDeviceNodes: true,
  suite: "bookworm",
  variant: "minbase",
  include: ["ca-certificates", "curl"],
  dpkgExcludes: [
    "/usr/share/man/*",
    "/usr/share/info/*",
    "/usr/share/locale/*",
    "/usr/share/doc/*",
    "/usr/share/lintian/*",
  ],
  dpkgIncludes: ["/usr/share/doc/*/copyright", "/usr/share/locale/locale.alias"],
  user: { name: "user", uid: 1000 },
  hostname: "wheellock",
} as const;

const MIB = 1024 * 1024;

/** The in-process build, so parallel sandboxes in one process wait for one build. */
let inflight: Promise<DefaultImage> | undefined;

/**
 * The default sandbox image (Debian bookworm minbase + curl + CA bundle + a uid-1000 user) as a
 * read-only ext4, built locally with mmdebstrap on first use and cached.
 *
 * Identity: the cache is looked up by a hash of RECIPE (so a later call needs no network and no
 * hashing: one small JSON read and a stat), but the returned digest is sha256 over the ext4
 * file's bytes. The recipe does not pin package versions (resolving them needs the network), so
 * two builds of one recipe differ; keying disks and memory snapshots by the real content digest
 * means a rebuilt image can never be mistaken for the one a snapshot was taken with.
 */
export function ensureDefaultImage(
  cacheDir: string,
  log: (m: string) => void,
): Promise<DefaultImage> {
  inflight ??= ensureOnce(cacheDir, log).finally(() => {
    inflight = undefined;
  });
  return inflight;
}

async function ensureOnce(cacheDir: string, log: (m: string) => void): Promise<DefaultImage> {
  const dir = join(cacheDir, "images", "default");
  const pointer = join(dir, `recipe-${recipeKey()}.json`);
  const cached = await readCached(dir, pointer);
  if (cached) return cached;
  makePrivateDir(dir);
  return withFileLock(
    join(dir, "build.lock"),
    {
      timeoutMs: 15 * 60_000,
      onWait: (pid) => log(`waiting for pid ${pid} to finish building the default image`),
    },
    async () => {
      // Another process may have finished the build while we waited for the lock.
      const done = await readCached(dir, pointer);
      if (done) return done;
      await removeStaleBuilds(dir);
      return build(dir, pointer, log);
    },
  );
}

export function recipeKey(): string {
  return createHash("sha256").update(JSON.stringify(RECIPE)).digest("hex").slice(0, 32);
}

interface Pointer {
  digest: string;
  file: string;
  sizeBytes: number;
}

async function readCached(dir: string, pointerPath: string): Promise<DefaultImage | undefined> {
  let p: Pointer;
  try {
    p = JSON.parse(await readFile(pointerPath, "utf8")) as Pointer;
  } catch {
    return undefined;
  }
  if (typeof p.digest !== "string" || typeof p.file !== "string" || typeof p.sizeBytes !== "number")
    return undefined;
  const ext4Path = join(dir, p.file);
  try {
    // A truncated or replaced file must not pass for the cached image.
    if ((await stat(ext4Path)).size !== p.sizeBytes) return undefined;
  } catch {
    return undefined;
  }
  return { ext4Path, digest: p.digest, sizeBytes: p.sizeBytes };
}

async function build(
  dir: string,
  pointerPath: string,
  log: (m: string) => void,
): Promise<DefaultImage> {
  const mmdebstrap = findExecutable("mmdebstrap");
  if (!mmdebstrap)
    throw new ErrSetup("mmdebstrap not found (package mmdebstrap); run: wheellock setup");
  const isRoot = (process.getuid?.() ?? 0) === 0;
  // Non-root: the tree's files belong to subuids, so extraction, mkfs and removal all run in a
  // user namespace with the same subuid mapping, where they look like root's files again.
  const wrap = isRoot ? [] : await userNamespacePrefix();
  const buildDir = await mkdtemp(join(dir, `build-${process.pid}-`));
  const rootfs = join(buildDir, "rootfs");
  const started = Date.now();
  try {
    const mirrors = debianMirrorsFor(RECIPE.suite);
    log(
      `building default image (Debian ${RECIPE.suite} ${RECIPE.variant} + ${RECIPE.include.join(", ")}) from ${mirrors.archive}`,
    );
    const common = [
      `--variant=${RECIPE.variant}`,
      `--include=${RECIPE.include.join(",")}`,
      // No device nodes: an unprivileged build cannot create them, and the guest mounts
      // devtmpfs on /dev anyway. Leaving them out in both modes keeps the two builds alike.
      "--skip=output/dev",
      // No fsync per unpacked file: the tree is a build artifact (a crashed build is rebuilt),
      // and on a busy disk dpkg's syncs are much of the image's first-run time.
      "--dpkgopt=force-unsafe-io",
      ...RECIPE.dpkgExcludes.map((p) => `--dpkgopt=path-exclude=${p}`),
      ...RECIPE.dpkgIncludes.map((p) => `--dpkgopt=path-include=${p}`),
      // Hooks are shell snippets that mmdebstrap runs inside its own chroot/namespace (the only
      // place that can create users when building unprivileged).
      `--customize-hook=chroot "$1" useradd --create-home --uid ${RECIPE.user.uid} --user-group --shell /bin/bash ${RECIPE.user.name}`,
      // mmdebstrap copies the host's hostname and resolv.conf; neither belongs in an image.
      `--customize-hook=echo ${RECIPE.hostname} > "$1/etc/hostname"`,
      `--customize-hook=: > "$1/etc/resolv.conf"`,
    ];
    const onLine = (l: string): void => {
      if (/^[IWE]:/.test(l)) log(`mmdebstrap: ${l.slice(3)}`);
    };
    const fail = (m: string): Error => new ErrSetup(`building the default image: ${m}`);
    if (isRoot) {
      await runToolOk(
        [
          mmdebstrap,
          "--mode=root",
          "--format=directory",
          ...common,
          RECIPE.suite,
          rootfs,
          ...mirrorSourceLines(RECIPE.suite, mirrors),
        ],
        fail,
        { onLine },
      );
    } else {
      // A tarball carries correct ownership whatever mode mmdebstrap picks (unshare, fakechroot).
      const tarPath = join(buildDir, "rootfs.tar");
      await runToolOk(
        [
          mmdebstrap,
          "--format=tar",
          ...common,
          RECIPE.suite,
          tarPath,
          ...mirrorSourceLines(RECIPE.suite, mirrors),
        ],
        fail,
        { onLine },
      );
      await mkdir(rootfs);
      await runToolOk(
        [
          ...wrap,
          "tar",
          "--numeric-owner",
          "--xattrs",
          "--xattrs-include=*",
          "-xpf",
          tarPath,
          "-C",
          rootfs,
        ],
        fail,
      );
      await rm(tarPath, { force: true });
    }
    // --skip=output/dev drops /dev itself; the guest needs it as a mount point. Root-owned in
    // both modes: a non-root build's namespace maps our uid to root.
    await mkdir(join(rootfs, "dev"), { recursive: true, mode: 0o755 });
    log(`mmdebstrap done in ${((Date.now() - started) / 1000).toFixed(1)} s; writing ext4`);
    const tmpImage = join(buildDir, "image.ext4");
    await buildExt4FromDir(rootfs, tmpImage, {
      label: "wheellock-root",
      wrap,
      slackBytes: 16 * MIB,
      slackRatio: 0.05,
    });
    const hex = await sha256File(tmpImage);
    const sizeBytes = (await stat(tmpImage)).size;
    await chmod(tmpImage, 0o644);
    const file = `${hex}.ext4`;
    // Same filesystem, so rename is atomic: the final name only ever holds a complete image.
    await rename(tmpImage, join(dir, file));
    const pointer: Pointer = { digest: `sha256:${hex}`, file, sizeBytes };
    const tmpPointer = `${pointerPath}.tmp-${process.pid}`;
    await writeFile(tmpPointer, JSON.stringify(pointer));
    await rename(tmpPointer, pointerPath);
    log(
      `default image ready: ${(sizeBytes / MIB).toFixed(0)} MiB in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    return { ext4Path: join(dir, file), digest: pointer.digest, sizeBytes };
  } finally {
    await removeTree(buildDir, wrap);
  }
}

/** `unshare` prefix mapping root and the user's subuid/subgid ranges (util-linux >= 2.38). */
async function userNamespacePrefix(): Promise<string[]> {
  const unshare = findExecutable("unshare");
  const prefix = [unshare ?? "unshare", "--map-auto", "--map-root-user", "--"];
  const probe = unshare ? await runTool([...prefix, "true"]).catch(() => undefined) : undefined;
  if (!probe || probe.code !== 0) {
    const why = probe ? probe.stderr.trim().split("\n").pop() : "unshare not found";
    throw new ErrSetup(
      `building the default image without root needs user namespaces with subuid ranges (unshare --map-auto: ${why}); ` +
        `run setup as root once: sudo env WHEELLOCK_CACHE_DIR=$HOME/.cache/wheellock wheellock setup`,
    );
  }
  return prefix;
}

async function removeTree(path: string, wrap: readonly string[]): Promise<void> {
  if (wrap.length > 0)
    await runTool([...wrap, "rm", "-rf", "--one-file-system", path]).catch(() => undefined);
  await rm(path, { recursive: true, force: true }).catch(() => undefined);
}

/** Build directories of processes that died mid-build (killed, power loss). */
async function removeStaleBuilds(dir: string): Promise<void> {
  const isRoot = (process.getuid?.() ?? 0) === 0;
  for (const name of await readdir(dir)) {
    const m = /^build-(\d+)-/.exec(name) ?? /\.tmp-(\d+)$/.exec(name);
    if (!m?.[1] || pidAlive(Number(m[1]))) continue;
    const wrap = isRoot ? [] : await userNamespacePrefix().catch(() => []);
    await removeTree(join(dir, name), wrap);
  }
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * MIB }))
    hash.update(chunk as Buffer);
  return hash.digest("hex");
}
