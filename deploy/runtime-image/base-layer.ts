/**
 * The runtime image's first layer: a Debian root filesystem with QEMU and the ext4 tools, made
 * by mmdebstrap (no Docker, no daemon), plus the non-root user the image runs as. Cached by its
 * recipe under `<cacheDir>/runtime-image/`: the packages change far less often than wheellock.
 */
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, existsSync, readFileSync } from "node:fs";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { debianMirrorsFor, mirrorSourceLines } from "../../src/image/debian-mirror.js";

export const RUNTIME_USER = { name: "wheellock", uid: 10001, home: "/home/wheellock" };

/** What the base layer is made of; any change makes a new layer. */
const RECIPE = {
  version: 1,
  suite: "bookworm",
  variant: "minbase",
  // QEMU and what wheellock runs at sandbox time; libstdc++ for the Node binary; sh for probes.
  include: ["qemu-system-x86", "qemu-utils", "e2fsprogs", "ca-certificates", "libstdc++6"],
  dpkgExcludes: [
    "/usr/share/doc/*",
    "/usr/share/man/*",
    "/usr/share/locale/*",
    "/usr/share/info/*",
  ],
};

export interface BuiltLayer {
  /** The gzipped layer tar. */
  path: string;
  /** sha256 of the gzipped bytes (the blob). */
  digest: string;
  /** sha256 of the uncompressed tar (the config's diff_id). */
  diffId: string;
  sizeBytes: number;
}

export function recipeKey(): string {
  return createHash("sha256").update(JSON.stringify(RECIPE)).digest("hex").slice(0, 16);
}

/** The cached base layer, built with mmdebstrap when missing. */
/** The base layer of the current recipe when an earlier build left it in `workDir`. */
export function cachedBaseLayer(workDir: string): BuiltLayer | undefined {
  const path = join(workDir, `base-${recipeKey()}.tar.gz`);
  const meta = `${path}.json`;
  if (!existsSync(path) || !existsSync(meta)) return undefined;
  return { path, ...(JSON.parse(readFileSync(meta, "utf8")) as Omit<BuiltLayer, "path">) };
}

export async function ensureBaseLayer(
  workDir: string,
  log: (line: string) => void,
): Promise<BuiltLayer> {
  const cached = cachedBaseLayer(workDir);
  if (cached) return cached;
  const path = join(workDir, `base-${recipeKey()}.tar.gz`);
  const meta = `${path}.json`;
  await mkdir(workDir, { recursive: true });
  const tar = join(workDir, `base-${process.pid}.tar`);
  const started = Date.now();
  try {
    const mirrors = debianMirrorsFor(RECIPE.suite);
    log(`base layer: mmdebstrap ${RECIPE.suite} ${RECIPE.variant} + ${RECIPE.include.join(", ")}`);
    const root = (process.getuid?.() ?? 0) === 0;
    const u = RUNTIME_USER;
    execFileSync(
      "mmdebstrap",
      [
        root ? "--mode=root" : "--mode=unshare",
        "--format=tar",
        `--variant=${RECIPE.variant}`,
        `--include=${RECIPE.include.join(",")}`,
        "--skip=output/dev",
        ...RECIPE.dpkgExcludes.map((p) => `--dpkgopt=path-exclude=${p}`),
        `--customize-hook=chroot "$1" useradd --create-home --home-dir ${u.home} --uid ${u.uid} --user-group --shell /bin/sh ${u.name}`,
        `--customize-hook=: > "$1/etc/resolv.conf"`,
        `--customize-hook=echo wheellock > "$1/etc/hostname"`,
        RECIPE.suite,
        tar,
        ...mirrorSourceLines(RECIPE.suite, mirrors),
      ],
      { stdio: ["ignore", "ignore", "pipe"], maxBuffer: 64 * 1024 * 1024 },
    );
    const layer = await gzipLayer(createReadStream(tar), path);
    await writeFile(
      meta,
      JSON.stringify({ digest: layer.digest, diffId: layer.diffId, sizeBytes: layer.sizeBytes }),
    );
    log(
      `base layer: ${(layer.sizeBytes / 1e6).toFixed(1)} MB in ${((Date.now() - started) / 1000).toFixed(0)} s`,
    );
    return layer;
  } finally {
    await rm(tar, { force: true });
  }
}

/**
 * Gzips a tar stream into `out`, hashing both sides: the diff_id (tar) and the digest (gzip).
 * Level 6, gzip's default: the layer is built once and pulled by every node.
 */
export async function gzipLayer(tar: AsyncIterable<Buffer>, out: string): Promise<BuiltLayer> {
  const tarHash = createHash("sha256");
  const gzHash = createHash("sha256");
  let sizeBytes = 0;
  const tapTar = new Transform({
    transform(chunk: Buffer, _e, done) {
      tarHash.update(chunk);
      done(null, chunk);
    },
  });
  const tapGz = new Transform({
    transform(chunk: Buffer, _e, done) {
      gzHash.update(chunk);
      sizeBytes += chunk.length;
      done(null, chunk);
    },
  });
  const tmp = `${out}.tmp-${process.pid}`;
  await pipeline(tar, tapTar, createGzip({ level: 6 }), tapGz, createWriteStream(tmp));
  await rename(tmp, out);
  return {
    path: out,
    digest: `sha256:${gzHash.digest("hex")}`,
    diffId: `sha256:${tarHash.digest("hex")}`,
    sizeBytes,
  };
}

/** Runs a command, resolving with its stdout (for `npm ls`). */
export function capture(cmd: string, args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(" ")} exited ${code}`)),
    );
  });
}
