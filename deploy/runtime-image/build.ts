/**
 * Builds wheellock's runtime image, the one the Kubernetes manifests run, as an OCI image-layout
 * tarball, without Docker:
 *
 *   node --import tsx deploy/runtime-image/build.ts [--out FILE] [--tag TAG]
 *        [--entrypoint JSON] [--cmd JSON]
 *   wheellock image import wheellock/runtime:TAG FILE
 *   wheellock push wheellock/runtime:TAG REGISTRY/wheellock/runtime:TAG
 *
 * Layer 1 (base-layer.ts): Debian bookworm minbase with QEMU and e2fsprogs (mmdebstrap), and the
 * non-root user `wheellock` (uid 10001). Layer 2 (app-layer.ts): Node, wheellock (dist/, guest/,
 * production node_modules) and the guest assets (kernel, agent, initramfs, default image) as
 * the image's cache dir. Runs `npm run build` output as it is: build first.
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, existsSync, statSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { pipeline } from "node:stream/promises";
import { pack } from "tar-stream";
import { cacheDir } from "../../src/paths.js";
import { prepareAssets } from "../../src/setup/index.js";
import { APP_DIR, appLayerTar, IMAGE_CACHE_DIR, IMAGE_DATA_DIR } from "./app-layer.js";
import {
  capture,
  ensureBaseLayer,
  gzipLayer,
  RUNTIME_USER,
  type BuiltLayer,
} from "./base-layer.js";

export interface RuntimeImageOptions {
  /** Where the OCI layout tarball goes. */
  outPath: string;
  /** The tag recorded in the layout's index (default: package version). */
  tag?: string;
  /** ENTRYPOINT (default ["wheellock"]). */
  entrypoint?: string[];
  /** CMD (default ["serve"]: a node; see deploy/kubernetes for its flags). */
  cmd?: string[];
  log?: (line: string) => void;
}

export interface RuntimeImage {
  outPath: string;
  manifestDigest: string;
  configDigest: string;
  layers: BuiltLayer[];
  sizeBytes: number;
}

const REPO = resolve(new URL("../..", import.meta.url).pathname);
const MEDIA = {
  manifest: "application/vnd.oci.image.manifest.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layer: "application/vnd.oci.image.layer.v1.tar+gzip",
};

export async function buildRuntimeImage(opts: RuntimeImageOptions): Promise<RuntimeImage> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  if (!existsSync(join(REPO, "dist/cli/main.cjs")))
    throw new Error("dist/ is missing: run `npm run build` first");
  const work = runtimeImageWorkDir();
  await mkdir(work, { recursive: true, mode: 0o700 });
  // The Debian kernel: the minimal one is found only where its source package is installed.
  process.env.WHEELLOCK_GUEST_KERNEL = "debian";
  const assets = await prepareAssets({ log });
  const shared = cacheDir();
  const cacheEntries = [
    relative(shared, dirname(assets.kernel.vmlinuzPath)),
    relative(shared, assets.initramfsPath),
    "agent",
    relative(shared, dirname(assets.image.ext4Path)),
  ];
  const base = await ensureBaseLayer(work, log);
  const started = Date.now();
  const app = await gzipLayer(
    appLayerTar({
      repoRoot: REPO,
      prodPackages: await productionPackages(),
      nodeBinary: process.execPath,
      cacheDir: shared,
      cacheEntries,
    }) as unknown as AsyncIterable<Buffer>,
    join(work, "app.tar.gz"),
  );
  log(
    `app layer: ${(app.sizeBytes / 1e6).toFixed(1)} MB in ${((Date.now() - started) / 1000).toFixed(0)} s`,
  );
  const layers = [base, app];
  const config = Buffer.from(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      created: "2024-01-01T00:00:00Z",
      config: {
        User: `${RUNTIME_USER.uid}:${RUNTIME_USER.uid}`,
        Env: [
          "PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
          `HOME=${RUNTIME_USER.home}`,
          `WHEELLOCK_CACHE_DIR=${IMAGE_CACHE_DIR}`,
          `WHEELLOCK_DATA_DIR=${IMAGE_DATA_DIR}`,
          "WHEELLOCK_GUEST_KERNEL=debian",
        ],
        Entrypoint: opts.entrypoint ?? ["wheellock"],
        Cmd: opts.cmd ?? ["serve"],
        WorkingDir: RUNTIME_USER.home,
        Labels: {
          "org.opencontainers.image.title": "wheellock runtime",
          "org.opencontainers.image.source": APP_DIR,
        },
      },
      rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
    }),
  );
  const configDigest = sha256(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA.manifest,
      config: { mediaType: MEDIA.config, digest: configDigest, size: config.length },
      layers: layers.map((l) => ({ mediaType: MEDIA.layer, digest: l.digest, size: l.sizeBytes })),
    }),
  );
  const manifestDigest = sha256(manifest);
  await writeLayout(opts.outPath, {
    manifest,
    manifestDigest,
    config,
    configDigest,
    layers,
    tag: opts.tag ?? "latest",
  });
  return {
    outPath: opts.outPath,
    manifestDigest,
    configDigest,
    layers,
    sizeBytes: layers.reduce((n, l) => n + l.sizeBytes, config.length),
  };
}

/** Where builds keep their layers (the base layer is reused while its recipe is unchanged). */
export function runtimeImageWorkDir(): string {
  return join(cacheDir(), "runtime-image");
}

/** The directories of every production dependency (`npm ls --omit=dev`), outermost first. */
async function productionPackages(): Promise<string[]> {
  const out = await capture("npm", ["ls", "--omit=dev", "--all", "--parseable"], REPO);
  const dirs = out
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.startsWith(join(REPO, "node_modules") + "/"))
    .sort();
  // A package's own node_modules come with it: keep only the outermost directories.
  return dirs.filter((d, i) => !dirs.slice(0, i).some((p) => d.startsWith(`${p}/`)));
}

async function writeLayout(
  out: string,
  img: {
    manifest: Buffer;
    manifestDigest: string;
    config: Buffer;
    configDigest: string;
    layers: BuiltLayer[];
    tag: string;
  },
): Promise<void> {
  const p = pack();
  const done = pipeline(p, createWriteStream(out, { mode: 0o644 }));
  const add = (name: string, body: Buffer): Promise<void> =>
    new Promise((r, j) => p.entry({ name, mtime: new Date(0) }, body, (e) => (e ? j(e) : r())));
  await add("oci-layout", Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
  await add(
    "index.json",
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        manifests: [
          {
            mediaType: MEDIA.manifest,
            digest: img.manifestDigest,
            size: img.manifest.length,
            annotations: { "org.opencontainers.image.ref.name": img.tag },
          },
        ],
      }),
    ),
  );
  await add(`blobs/sha256/${img.manifestDigest.slice(7)}`, img.manifest);
  await add(`blobs/sha256/${img.configDigest.slice(7)}`, img.config);
  for (const layer of img.layers) {
    await new Promise<void>((resolve, reject) => {
      const sink = p.entry(
        {
          name: `blobs/sha256/${layer.digest.slice(7)}`,
          size: statSync(layer.path).size,
          mtime: new Date(0),
        },
        (e) => (e ? reject(e) : resolve()),
      );
      createReadStream(layer.path).pipe(sink);
    });
  }
  p.finalize();
  await done;
}

function sha256(b: Buffer): string {
  return `sha256:${createHash("sha256").update(b).digest("hex")}`;
}

/** `--flag value` pairs from argv. */
function flag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname)) {
  const json = (v: string | undefined): string[] | undefined =>
    v === undefined ? undefined : (JSON.parse(v) as string[]);
  const entrypoint = json(flag("--entrypoint"));
  const cmd = json(flag("--cmd"));
  const tag = flag("--tag");
  const img = await buildRuntimeImage({
    outPath: resolve(flag("--out") ?? "wheellock-runtime.tar"),
    ...(tag !== undefined ? { tag } : {}),
    ...(entrypoint ? { entrypoint } : {}),
    ...(cmd ? { cmd } : {}),
  });
  process.stdout.write(
    `${img.outPath}\nmanifest ${img.manifestDigest}\nconfig ${img.configDigest}\n` +
      `size ${(img.sizeBytes / 1e6).toFixed(1)} MB (compressed)\n`,
  );
}
