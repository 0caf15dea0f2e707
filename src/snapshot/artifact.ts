import { ErrSnapshotMismatch } from "../errors.js";

/**
 * A memory snapshot as an OCI artifact: an image manifest whose config is the snapshot's key
 * (what the saved VM depends on, by content) and whose three layers are the VM's device state,
 * its RAM and its writable disk, the last two in the sparse encoding (sparse-codec.ts), gzipped.
 */
export const SNAPSHOT_MEDIA = {
  manifest: "application/vnd.oci.image.manifest.v1+json",
  artifact: "application/vnd.wheellock.snapshot.v1",
  config: "application/vnd.wheellock.snapshot.key.v1+json",
  state: "application/vnd.wheellock.snapshot.state.v1",
  memory: "application/vnd.wheellock.snapshot.memory.v1.sparse+gzip",
  disk: "application/vnd.wheellock.snapshot.disk.v1.sparse+gzip",
} as const;

/** Annotation on the RAM and disk layers: the decoded file's size in bytes. */
export const SIZE_ANNOTATION = "vnd.wheellock.snapshot.file-size";

/** Which local image a snapshot's guest booted. */
export interface SnapshotImage {
  /** sha256 of the image's ext4, byte for byte: the guest's page cache holds its blocks. */
  digest: string;
  /** "default" (built by setup) or the image reference it was stored under. */
  name: string;
  /** The OCI image's config digest (its flattened ext4's name in the store). */
  configDigest?: string;
}

/**
 * The key of a snapshot that travels: everything the saved memory depends on, by content, so a
 * node can compare it with its own QEMU, kernel, agent (initramfs) and accelerator.
 */
export interface SnapshotKeyDocument {
  /**
   * Version of this document: 2 when it has `diskSlots` (so that a wheellock that reads only
   * version 1 refuses it rather than restoring a VM with disk slots as one without).
   */
  wheellockSnapshot: 1 | 2;
  /** The snapshot store's format (how snapshots are saved and restored). */
  format: number;
  /** sha256 of the QEMU binary that saved the state. */
  qemu: string;
  /** sha256 of the guest kernel. */
  kernel: string;
  /** sha256 of the initramfs: the guest agent and the kernel's modules. */
  initramfs: string;
  image: SnapshotImage;
  accel: "kvm" | "tcg";
  /**
   * Under KVM the guest sees the host's CPU (`-cpu host`): sha256 of the saving host's CPU
   * vendor, model and feature flags, so no node restores a CPU state its processor cannot
   * honour. null under TCG (QEMU's `max` model: the QEMU digest covers it).
   */
  hostCpu: string | null;
  vcpus: number;
  memoryMb: number;
  diskSizeMb: number;
  kernelArgs: string[];
  networkMtu: number | null;
  /**
   * The extra-disk slots of the saved VM (placeholder drives, read-write or read-only: a
   * virtio feature its guest negotiated); absent without. A restore attaches the sandbox's
   * own disks there (snapshot-policy.ts).
   */
  diskSlots?: ("rw" | "ro")[];
  createdAt: string;
}

/** At most as many slots as a sandbox may have disks (config MAX_DISKS). */
export const MAX_DISK_SLOTS = 8;

const DIGEST = /^sha256:[a-f0-9]{64}$/;
/** The key is a few hundred bytes; anything big is not ours. */
export const MAX_CONFIG_BYTES = 64 * 1024;
/** Device state of a microvm is ~76 KB. */
export const MAX_STATE_BYTES = 64 * 1024 * 1024;

/** Checks a key document field by field; anything unexpected is refused. */
export function parseKeyDocument(body: Buffer): SnapshotKeyDocument {
  const bad = (why: string): never => {
    throw new ErrSnapshotMismatch(`snapshot key is malformed: ${why}`);
  };
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(body.toString("utf8")) as Record<string, unknown>;
  } catch {
    return bad("not JSON");
  }
  if (
    !doc ||
    typeof doc !== "object" ||
    (doc.wheellockSnapshot !== 1 && doc.wheellockSnapshot !== 2)
  )
    bad("unknown version");
  const diskSlots = parseDiskSlots(doc.wheellockSnapshot === 2, doc.diskSlots, bad);
  const digest = (v: unknown, what: string): string =>
    typeof v === "string" && DIGEST.test(v) ? v : bad(`${what} is not a sha256 digest`);
  const int = (v: unknown, what: string, min: number, max: number): number =>
    Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max
      ? (v as number)
      : bad(`${what} out of range`);
  const image = doc.image as Record<string, unknown> | undefined;
  if (!image || typeof image !== "object") bad("no image");
  const img = image as Record<string, unknown>;
  if (typeof img.name !== "string" || img.name.length > 4096) bad("bad image name");
  const args = doc.kernelArgs;
  if (
    !Array.isArray(args) ||
    args.length > 256 ||
    !args.every((a) => typeof a === "string" && a.length <= 4096)
  )
    bad("bad kernel arguments");
  if (doc.accel !== "kvm" && doc.accel !== "tcg") bad("unknown accelerator");
  if (doc.accel === "kvm" ? !DIGEST.test(String(doc.hostCpu)) : doc.hostCpu !== null)
    bad("hostCpu must be a sha256 digest under KVM and null under TCG");
  if (doc.networkMtu !== null) int(doc.networkMtu, "networkMtu", 68, 65535);
  return {
    wheellockSnapshot: diskSlots ? 2 : 1,
    format: int(doc.format, "format", 1, 1_000_000),
    qemu: digest(doc.qemu, "qemu"),
    kernel: digest(doc.kernel, "kernel"),
    initramfs: digest(doc.initramfs, "initramfs"),
    image: {
      digest: digest(img.digest, "image digest"),
      name: img.name as string,
      ...(img.configDigest !== undefined
        ? { configDigest: digest(img.configDigest, "image config digest") }
        : {}),
    },
    accel: doc.accel as "kvm" | "tcg",
    hostCpu: doc.hostCpu as string | null,
    vcpus: int(doc.vcpus, "vcpus", 1, 1024),
    memoryMb: int(doc.memoryMb, "memoryMb", 1, 16 * 1024 * 1024),
    diskSizeMb: int(doc.diskSizeMb, "diskSizeMb", 1, 1024 * 1024 * 1024),
    kernelArgs: args as string[],
    networkMtu: doc.networkMtu as number | null,
    ...(diskSlots ? { diskSlots } : {}),
    createdAt: typeof doc.createdAt === "string" ? doc.createdAt.slice(0, 64) : "",
  };
}

/** Version 2 has 1 to MAX_DISK_SLOTS slots, each "rw" or "ro"; version 1 has none. */
function parseDiskSlots(
  v2: boolean,
  value: unknown,
  bad: (why: string) => never,
): ("rw" | "ro")[] | undefined {
  if (!v2) return value === undefined ? undefined : bad("diskSlots in a version 1 key");
  if (!Array.isArray(value)) return bad("diskSlots is not a list");
  if (value.length < 1 || value.length > MAX_DISK_SLOTS)
    return bad(`${value.length} disk slots (1 to ${MAX_DISK_SLOTS})`);
  if (!value.every((s) => s === "rw" || s === "ro")) return bad('a disk slot is not "rw" or "ro"');
  return value as ("rw" | "ro")[];
}

export interface LayerDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

export interface SnapshotManifest {
  config: LayerDescriptor;
  state: LayerDescriptor;
  memory: LayerDescriptor;
  disk: LayerDescriptor;
}

/** The manifest of a snapshot artifact (and nothing else: an image is refused). */
export function parseSnapshotManifest(body: Buffer): SnapshotManifest {
  const bad = (why: string): never => {
    throw new ErrSnapshotMismatch(`not a wheellock snapshot: ${why}`);
  };
  let doc: { config?: unknown; layers?: unknown };
  try {
    doc = JSON.parse(body.toString("utf8")) as typeof doc;
  } catch {
    return bad("manifest is not JSON");
  }
  const desc = (v: unknown, mediaType: string, max: number): LayerDescriptor => {
    const d = v as Partial<LayerDescriptor> | undefined;
    if (!d || typeof d !== "object" || d.mediaType !== mediaType)
      return bad(`expected a ${mediaType} descriptor`);
    if (typeof d.digest !== "string" || !DIGEST.test(d.digest)) return bad("bad digest");
    if (!Number.isSafeInteger(d.size) || (d.size as number) < 0 || (d.size as number) > max)
      return bad(`${mediaType} of ${d.size} bytes`);
    return {
      mediaType,
      digest: d.digest,
      size: d.size as number,
      ...(d.annotations && typeof d.annotations === "object" ? { annotations: d.annotations } : {}),
    };
  };
  if (!Array.isArray(doc.layers) || doc.layers.length !== 3) return bad("expected 3 layers");
  const [state, memory, disk] = doc.layers as unknown[];
  return {
    config: desc(doc.config, SNAPSHOT_MEDIA.config, MAX_CONFIG_BYTES),
    state: desc(state, SNAPSHOT_MEDIA.state, MAX_STATE_BYTES),
    memory: desc(memory, SNAPSHOT_MEDIA.memory, Number.MAX_SAFE_INTEGER),
    disk: desc(disk, SNAPSHOT_MEDIA.disk, Number.MAX_SAFE_INTEGER),
  };
}

/** The manifest bytes for a snapshot's config and layers. */
export function snapshotManifest(m: SnapshotManifest, createdAt: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: SNAPSHOT_MEDIA.manifest,
      artifactType: SNAPSHOT_MEDIA.artifact,
      config: m.config,
      layers: [m.state, m.memory, m.disk],
      annotations: { "org.opencontainers.image.created": createdAt },
    }),
  );
}
