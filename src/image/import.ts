import { createReadStream } from "node:fs";
import type { Readable } from "node:stream";
import { extract } from "tar-stream";
import { ErrImage } from "../errors.js";
import { sha256Digest } from "./blob-store.js";
import { reportingDiskFull } from "./disk-full.js";
import { parseImageConfig } from "./image-config.js";
import type { ImageRecord, ImageStore } from "./image-store.js";
import { newImageRecord } from "./image-record.js";
import { MEDIA, parseManifest, type Descriptor } from "./manifest.js";
import { DEFAULT_PLATFORM, formatPlatform, platformMatches } from "./platform.js";
import { parseReference } from "./reference.js";

export interface ImportOptions {
  store: ImageStore;
  /** Where the archive comes from: `docker save` output or an OCI image-layout tar. */
  source: Readable;
}

/** Archive members we read as JSON rather than treat as blobs. */
const JSON_MEMBERS = new Set(["manifest.json", "index.json", "oci-layout", "repositories"]);

/**
 * Imports a `docker save` archive or an OCI image-layout tar as `name` (NAME:TAG). Every member
 * goes into the blob store under the digest it hashes to, so the archive is read once, as a
 * stream (stdin works), and no member can name a path on the host.
 */
export async function importImage(name: string, opts: ImportOptions): Promise<ImageRecord> {
  return reportingDiskFull(`importing ${name}`, opts.store.root, () => importInto(name, opts));
}

async function importInto(name: string, opts: ImportOptions): Promise<ImageRecord> {
  const ref = parseReference(name);
  const members = new Map<string, { digest: string; sizeBytes: number }>();
  const json = new Map<string, unknown>();
  const ex = extract();
  opts.source.on("error", (e) => ex.destroy(e));
  opts.source.pipe(ex);
  for await (const entry of ex) {
    const path = entry.header.name.replace(/^(\.\/)+/, "");
    if (entry.header.type !== "file") {
      entry.resume();
      continue;
    }
    if (JSON_MEMBERS.has(path)) {
      const chunks: Buffer[] = [];
      for await (const c of entry as AsyncIterable<Buffer>) chunks.push(c);
      try {
        json.set(path, JSON.parse(Buffer.concat(chunks).toString("utf8")));
      } catch {
        throw new ErrImage(`import: ${path} in the archive is not JSON`);
      }
      continue;
    }
    members.set(path, await opts.store.blobs.putAny(entry as AsyncIterable<Buffer>));
  }
  const member = (p: string): { digest: string; sizeBytes: number } => {
    const m = members.get(p.replace(/^(\.\/)+/, ""));
    if (!m) throw new ErrImage(`import: the archive lacks ${p}`);
    return m;
  };
  let config: Descriptor;
  let layers: Descriptor[];
  const dockerManifest = json.get("manifest.json") as
    Array<{ Config?: string; Layers?: string[] }> | undefined;
  if (Array.isArray(dockerManifest)) {
    if (dockerManifest.length !== 1)
      throw new ErrImage(
        `import: the archive holds ${dockerManifest.length} images; save one at a time`,
      );
    const only = dockerManifest[0];
    if (!only?.Config || !Array.isArray(only.Layers))
      throw new ErrImage("import: malformed manifest.json");
    const c = member(only.Config);
    config = { mediaType: MEDIA.dockerConfig, digest: c.digest, size: c.sizeBytes };
    layers = only.Layers.map((l) => {
      const m = member(l);
      return {
        mediaType: "application/vnd.docker.image.rootfs.diff.tar",
        digest: m.digest,
        size: m.sizeBytes,
      };
    });
  } else if (json.has("index.json")) {
    ({ config, layers } = await fromOciLayout(json.get("index.json"), opts.store));
  } else {
    throw new ErrImage(
      "import: neither manifest.json (docker save) nor index.json (OCI layout) in the archive",
    );
  }
  const parsed = parseImageConfig(await opts.store.blobs.read(config.digest));
  if (parsed.diffIds.length !== layers.length)
    throw new ErrImage(
      `import: ${layers.length} layers but the config lists ${parsed.diffIds.length}`,
    );
  const manifestBody = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.ociManifest, config, layers }),
  );
  const digest = sha256Digest(manifestBody);
  await opts.store.blobs.putBuffer(digest, manifestBody);
  const rootfs = await opts.store.ensureRootfs(config.digest, () =>
    Promise.resolve(
      layers.map((l, i) => ({
        name: l.digest,
        diffId: parsed.diffIds[i] ?? "",
        sizeBytes: l.size,
        open: () =>
          Promise.resolve(
            createReadStream(opts.store.blobs.path(l.digest), { highWaterMark: 1 << 20 }),
          ),
      })),
    ),
  );
  const rec = newImageRecord({
    ref,
    digest,
    configDigest: config.digest,
    platform: formatPlatform({
      os: parsed.os ?? DEFAULT_PLATFORM.os,
      architecture: parsed.architecture ?? DEFAULT_PLATFORM.architecture,
    }),
    layers,
    rootfsPath: rootfs.path,
    rootfsSizeBytes: rootfs.sizeBytes,
    created: parsed.created,
    source: "import",
    config: parsed.runtime,
  });
  await opts.store.put(rec);
  // Archive members the image does not use (docker save's VERSION and json files, ...).
  await opts.store.removeBlobsUnlessUsed([...members.values()].map((m) => m.digest));
  return rec;
}

/** OCI layout: index.json → (index →) manifest for linux/amd64, blobs by digest. */
async function fromOciLayout(
  index: unknown,
  store: ImageStore,
): Promise<{ config: Descriptor; layers: Descriptor[] }> {
  let doc = parseManifest(Buffer.from(JSON.stringify(index)), MEDIA.ociIndex);
  for (let depth = 0; doc.kind === "index"; depth++) {
    if (depth > 2) throw new ErrImage("import: indexes nested too deep");
    const list = doc.manifests;
    const chosen =
      list.length === 1 ? list[0] : list.find((m) => platformMatches(m.platform, DEFAULT_PLATFORM));
    if (!chosen) throw new ErrImage("import: no linux/amd64 manifest in index.json");
    if (!(await store.blobs.has(chosen.digest)))
      throw new ErrImage(`import: the archive lacks blob ${chosen.digest}`);
    doc = parseManifest(await store.blobs.read(chosen.digest), chosen.mediaType);
  }
  for (const d of [doc.config, ...doc.layers])
    if (!(await store.blobs.has(d.digest)))
      throw new ErrImage(`import: the archive lacks blob ${d.digest}`);
  return { config: doc.config, layers: doc.layers };
}
