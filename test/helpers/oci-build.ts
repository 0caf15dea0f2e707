import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { pack, type Header } from "tar-stream";

/** Test-side image building: layer tars with exact headers (including hostile ones). */
export type EntrySpec = Partial<Header> & {
  name: string;
  content?: string | Buffer;
  pax?: Record<string, string>;
};

export function sha256(b: Buffer): string {
  return `sha256:${createHash("sha256").update(b).digest("hex")}`;
}

export async function layerTar(entries: EntrySpec[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of p as AsyncIterable<Buffer>) chunks.push(Buffer.from(c));
  })();
  for (const e of entries) {
    const { content, ...h } = e;
    const body = content === undefined ? undefined : Buffer.from(content);
    await new Promise<void>((resolve, reject) => {
      const header = {
        type: "file" as const,
        mode: h.type === "directory" ? 0o755 : 0o644,
        uid: 0,
        gid: 0,
        mtime: new Date(1_700_000_000_000),
        ...h,
        ...(body ? { size: body.length } : {}),
      };
      p.entry(header, body ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
    });
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

export interface ImageConfigSpec {
  Env?: string[];
  Entrypoint?: string[];
  Cmd?: string[];
  User?: string;
  WorkingDir?: string;
}

export interface BuiltLayer {
  blob: Buffer;
  digest: string;
  diffId: string;
  mediaType: string;
}

export interface BuiltImage {
  layers: BuiltLayer[];
  config: Buffer;
  configDigest: string;
  manifest: Buffer;
  manifestDigest: string;
  manifestMediaType: string;
}

export function buildImage(
  tars: Buffer[],
  cfg: ImageConfigSpec = {},
  opts: { architecture?: string; gzip?: boolean; docker?: boolean } = {},
): BuiltImage {
  const docker = opts.docker ?? false;
  const layers = tars.map((t) => {
    const blob = opts.gzip === false ? t : gzipSync(t);
    return {
      blob,
      digest: sha256(blob),
      diffId: sha256(t),
      mediaType: docker
        ? "application/vnd.docker.image.rootfs.diff.tar.gzip"
        : opts.gzip === false
          ? "application/vnd.oci.image.layer.v1.tar"
          : "application/vnd.oci.image.layer.v1.tar+gzip",
    };
  });
  return assembleImage(layers, cfg, opts);
}

/** Config and manifest around layers built elsewhere (a blob whose diff_id is made up, say). */
export function assembleImage(
  layers: BuiltLayer[],
  cfg: ImageConfigSpec = {},
  opts: { architecture?: string; docker?: boolean } = {},
): BuiltImage {
  const docker = opts.docker ?? false;
  const config = Buffer.from(
    JSON.stringify({
      architecture: opts.architecture ?? "amd64",
      os: "linux",
      created: "2024-01-02T03:04:05Z",
      config: cfg,
      rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
    }),
  );
  const manifestMediaType = docker
    ? "application/vnd.docker.distribution.manifest.v2+json"
    : "application/vnd.oci.image.manifest.v1+json";
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: manifestMediaType,
      config: {
        mediaType: docker
          ? "application/vnd.docker.container.image.v1+json"
          : "application/vnd.oci.image.config.v1+json",
        digest: sha256(config),
        size: config.length,
      },
      layers: layers.map((l) => ({
        mediaType: l.mediaType,
        digest: l.digest,
        size: l.blob.length,
      })),
    }),
  );
  return {
    layers,
    config,
    configDigest: sha256(config),
    manifest,
    manifestDigest: sha256(manifest),
    manifestMediaType,
  };
}

export function buildIndex(entries: Array<{ image: BuiltImage; architecture: string }>): {
  body: Buffer;
  digest: string;
} {
  const body = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: entries.map((e) => ({
        mediaType: e.image.manifestMediaType,
        digest: e.image.manifestDigest,
        size: e.image.manifest.length,
        platform: { os: "linux", architecture: e.architecture },
      })),
    }),
  );
  return { body, digest: sha256(body) };
}

/** A runnable userland: busybox-static at /bin/busybox plus applet links, passwd and group. */
export function busyboxEntries(): EntrySpec[] {
  const applets = [
    "sh",
    "ls",
    "cat",
    "id",
    "stat",
    "echo",
    "env",
    "pwd",
    "readlink",
    "test",
    "wc",
    "sha256sum",
  ];
  return [
    { name: "bin/", type: "directory" },
    { name: "bin/busybox", content: readFileSync("/bin/busybox"), mode: 0o755 },
    ...applets.map((a) => ({ name: `bin/${a}`, type: "symlink" as const, linkname: "busybox" })),
    { name: "etc/", type: "directory" },
    {
      name: "etc/passwd",
      content: "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
    },
    { name: "etc/group", content: "root:x:0:\napp:x:1000:\n" },
    { name: "tmp/", type: "directory", mode: 0o1777 },
    { name: "root/", type: "directory", mode: 0o700 },
    { name: "home/app/", type: "directory", uid: 1000, gid: 1000 },
  ];
}

/** A `docker save` archive (classic layout: manifest.json, <id>.json, <id>/layer.tar). */
export async function dockerSaveTar(
  tars: Buffer[],
  cfg: ImageConfigSpec,
  repoTag: string,
): Promise<Buffer> {
  const img = buildImage(tars, cfg, { gzip: false });
  const configName = `${img.configDigest.slice(7)}.json`;
  const layerNames = img.layers.map((l) => `${l.diffId.slice(7)}/layer.tar`);
  return layerTar([
    { name: configName, content: img.config },
    ...img.layers.flatMap((l, i) => [
      { name: `${l.diffId.slice(7)}/`, type: "directory" as const },
      { name: layerNames[i] ?? "", content: l.blob },
      { name: `${l.diffId.slice(7)}/VERSION`, content: "1.0" },
    ]),
    {
      name: "manifest.json",
      content: JSON.stringify([{ Config: configName, RepoTags: [repoTag], Layers: layerNames }]),
    },
    { name: "repositories", content: "{}" },
  ]);
}

/** An OCI image-layout archive (oci-layout, index.json, blobs/sha256/...). */
export async function ociLayoutTar(img: BuiltImage): Promise<Buffer> {
  const blob = (digest: string, content: Buffer): EntrySpec => ({
    name: `blobs/sha256/${digest.slice(7)}`,
    content,
  });
  const index = {
    schemaVersion: 2,
    manifests: [
      { mediaType: img.manifestMediaType, digest: img.manifestDigest, size: img.manifest.length },
    ],
  };
  return layerTar([
    { name: "oci-layout", content: '{"imageLayoutVersion":"1.0.0"}' },
    { name: "index.json", content: JSON.stringify(index) },
    blob(img.manifestDigest, img.manifest),
    blob(img.configDigest, img.config),
    ...img.layers.map((l) => blob(l.digest, l.blob)),
  ]);
}
