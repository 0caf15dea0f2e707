import { ErrImage } from "../errors.js";
import type { Platform } from "./platform.js";

export const MEDIA = {
  ociIndex: "application/vnd.oci.image.index.v1+json",
  dockerList: "application/vnd.docker.distribution.manifest.list.v2+json",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
} as const;

/** What we ask registries for: every index and manifest flavour we can read. */
export const MANIFEST_ACCEPT = [
  MEDIA.ociIndex,
  MEDIA.dockerList,
  MEDIA.ociManifest,
  MEDIA.dockerManifest,
].join(", ");

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Partial<Platform>;
  annotations?: Record<string, string>;
}

export interface IndexDocument {
  kind: "index";
  manifests: Descriptor[];
}

export interface ManifestDocument {
  kind: "manifest";
  config: Descriptor;
  layers: Descriptor[];
}

const DIGEST = /^sha256:[a-f0-9]{64}$/;

function descriptor(value: unknown, where: string): Descriptor {
  const d = value as Partial<Descriptor> | null;
  if (
    !d ||
    typeof d !== "object" ||
    typeof d.digest !== "string" ||
    !DIGEST.test(d.digest) ||
    typeof d.size !== "number" ||
    !Number.isSafeInteger(d.size) ||
    d.size < 0
  )
    throw new ErrImage(`malformed ${where}: descriptor needs a sha256 digest and a size`);
  const out: Descriptor = {
    mediaType: typeof d.mediaType === "string" ? d.mediaType : "",
    digest: d.digest,
    size: d.size,
  };
  if (d.platform && typeof d.platform === "object") out.platform = d.platform;
  return out;
}

/**
 * Parses a manifest or index body. The media type comes from the body when present (OCI allows
 * it to be absent; then the Content-Type header decides, then the shape).
 */
export function parseManifest(
  body: Buffer,
  contentType: string | undefined,
): IndexDocument | ManifestDocument {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(body.toString("utf8")) as Record<string, unknown>;
  } catch {
    throw new ErrImage("malformed manifest: not JSON");
  }
  if (!json || typeof json !== "object") throw new ErrImage("malformed manifest: not an object");
  const type =
    (typeof json.mediaType === "string" ? json.mediaType : undefined) ??
    contentType?.split(";")[0]?.trim();
  if (json.schemaVersion === 1 || type?.includes("manifest.v1+prettyjws"))
    throw new ErrImage("Docker schema 1 manifests are not supported (deprecated since 2019)");
  if (type === MEDIA.ociIndex || type === MEDIA.dockerList || Array.isArray(json.manifests)) {
    if (!Array.isArray(json.manifests)) throw new ErrImage("malformed index: no manifests");
    return { kind: "index", manifests: json.manifests.map((m) => descriptor(m, "index")) };
  }
  if (!Array.isArray(json.layers)) throw new ErrImage("malformed manifest: no layers");
  return {
    kind: "manifest",
    config: descriptor(json.config, "manifest config"),
    layers: json.layers.map((l) => descriptor(l, "manifest layer")),
  };
}
