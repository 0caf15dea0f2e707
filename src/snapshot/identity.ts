import { createHash } from "node:crypto";
import { createReadStream, existsSync, readFileSync, statSync } from "node:fs";
import { basename } from "node:path";
import { ENV_ACCEL } from "../config/index.js";
import { ErrSnapshotMismatch } from "../errors.js";
import { ImageStore } from "../image/index.js";
import {
  SNAPSHOT_FORMAT_VERSION,
  type SnapshotInputs,
  type SnapshotMeta,
} from "../sandbox/index.js";
import { prepareAssets } from "../setup/index.js";
import { detectAccel, findQemuBinary, type AccelChoice } from "../vmm/index.js";
import type { SnapshotImage, SnapshotKeyDocument } from "./artifact.js";

/** sha256 of files by (path, inode, size, mtime): QEMU, kernel and images are hashed once. */
const digests = new Map<string, Promise<string>>();

export function fileDigest(path: string): Promise<string> {
  const st = statSync(path);
  const id = `${path}\0${st.ino}\0${st.size}\0${st.mtimeMs}`;
  let d = digests.get(id);
  if (!d) {
    d = new Promise<string>((resolve, reject) => {
      const hash = createHash("sha256");
      createReadStream(path, { highWaterMark: 1 << 20 })
        .on("data", (c) => hash.update(c))
        .on("error", reject)
        .on("end", () => resolve(`sha256:${hash.digest("hex")}`));
    });
    d.catch(() => digests.delete(id));
    digests.set(id, d);
  }
  return d;
}

/**
 * The portable key of a local snapshot: its recorded inputs, with every file replaced by the
 * digest of its content (and the image named as this node knows it).
 */
export async function describeSnapshot(
  meta: SnapshotMeta & { inputs: SnapshotInputs },
): Promise<SnapshotKeyDocument> {
  const { inputs } = meta;
  const [qemu, kernel, initramfs, image] = await Promise.all([
    fileDigest(findQemuBinary()),
    fileDigest(inputs.kernelPath),
    fileDigest(inputs.initramfsPath),
    describeImage(inputs.imagePath),
  ]);
  const diskSlots = inputs.diskSlots?.length ? [...inputs.diskSlots] : undefined;
  return {
    wheellockSnapshot: diskSlots ? 2 : 1,
    format: SNAPSHOT_FORMAT_VERSION,
    qemu,
    kernel,
    initramfs,
    image,
    accel: inputs.accel === "kvm" ? "kvm" : "tcg",
    hostCpu: inputs.accel === "kvm" ? hostCpuDigest() : null,
    vcpus: inputs.vcpus,
    memoryMb: inputs.memoryMb,
    diskSizeMb: inputs.diskSizeMb,
    kernelArgs: [...inputs.kernelArgs],
    networkMtu: inputs.networkMtu ?? null,
    ...(diskSlots ? { diskSlots } : {}),
    createdAt: meta.createdAt,
  };
}

async function describeImage(imagePath: string): Promise<SnapshotImage> {
  const digest = await fileDigest(imagePath);
  const store = new ImageStore();
  const configHex = /^v\d+-([a-f0-9]{64})\.ext4$/.exec(basename(imagePath))?.[1];
  const configDigest = configHex ? `sha256:${configHex}` : undefined;
  if (!configDigest || store.rootfsPathFor(configDigest) !== imagePath)
    return { digest, name: "default" };
  const rec = (await store.list()).find((r) => r.rootfsFile === basename(imagePath));
  return { digest, name: rec?.reference ?? configDigest, configDigest };
}

export interface NodeFit {
  /** This node's inputs for the snapshot: its own files, the snapshot's settings. */
  inputs: SnapshotInputs;
  /** Why the snapshot cannot be restored here; empty when it can. */
  mismatches: string[];
}

/**
 * Compares a snapshot's key with this node: the QEMU binary, guest kernel, agent (initramfs),
 * image and accelerator a sandbox here would use, by content. Any difference means the saved
 * memory belongs to another machine: it must never be restored.
 */
export async function fitToNode(
  theirs: SnapshotKeyDocument,
  opts: { accel?: AccelChoice } = {},
): Promise<NodeFit> {
  const assets = await prepareAssets();
  const store = new ImageStore();
  const mismatches: string[] = [];
  let imagePath = assets.image.ext4Path;
  if (theirs.image.configDigest) {
    imagePath = store.rootfsPathFor(theirs.image.configDigest);
    if (!existsSync(imagePath))
      mismatches.push(`its image ${theirs.image.name} is not on this node (pull it first)`);
  }
  const accelChoice = opts.accel ?? accelFromEnv();
  const accel = detectAccel(accelChoice).accel;
  const same = async (what: string, want: string, path: string): Promise<void> => {
    if (!existsSync(path)) return;
    const have = await fileDigest(path);
    if (have !== want)
      mismatches.push(`${what} ${short(want)} differs from this node's ${short(have)}`);
  };
  if (theirs.format !== SNAPSHOT_FORMAT_VERSION)
    mismatches.push(
      `snapshot format ${theirs.format} is not this wheellock's ${SNAPSHOT_FORMAT_VERSION}`,
    );
  await same("QEMU", theirs.qemu, findQemuBinary());
  await same("kernel", theirs.kernel, assets.kernel.vmlinuzPath);
  await same("agent/initramfs", theirs.initramfs, assets.initramfsPath);
  await same("image", theirs.image.digest, imagePath);
  if (theirs.accel !== accel)
    mismatches.push(`accelerator ${theirs.accel} is not this node's ${accel}`);
  else mismatches.push(...cpuMismatch(theirs, accel === "kvm" ? hostCpuDigest() : null));
  return {
    inputs: {
      kernelPath: assets.kernel.vmlinuzPath,
      initramfsPath: assets.initramfsPath,
      imagePath,
      accel: theirs.accel,
      vcpus: theirs.vcpus,
      memoryMb: theirs.memoryMb,
      diskSizeMb: theirs.diskSizeMb,
      kernelArgs: theirs.kernelArgs,
      networkMtu: theirs.networkMtu ?? undefined,
      ...(theirs.diskSlots?.length ? { diskSlots: [...theirs.diskSlots] } : {}),
    },
    mismatches,
  };
}

/**
 * The host CPU as a KVM guest sees it (`-cpu host`): vendor, family, model and feature flags
 * of the first processor in /proc/cpuinfo, hashed. Microcode and clock speed are left out:
 * they do not change what the guest may execute.
 */
export function hostCpuDigest(cpuinfo = readFileSync("/proc/cpuinfo", "utf8")): string {
  const first = cpuinfo.split(/\n\s*\n/)[0] ?? "";
  const field = (name: string): string =>
    new RegExp(`^${name}\\s*:\\s*(.*)$`, "m").exec(first)?.[1]?.trim() ?? "";
  const flags = field("flags").split(/\s+/).filter(Boolean).sort().join(" ");
  const id = [field("vendor_id"), field("cpu family"), field("model"), flags].join("\n");
  return `sha256:${createHash("sha256").update(id).digest("hex")}`;
}

/** Why a snapshot's CPU state cannot run on this node's processor (empty when it can). */
export function cpuMismatch(theirs: SnapshotKeyDocument, ours: string | null): string[] {
  if (theirs.accel !== "kvm" || theirs.hostCpu === ours) return [];
  return [
    `its KVM CPU state was saved on another processor model (${short(theirs.hostCpu ?? "none")}, this node's ${short(ours ?? "none")})`,
  ];
}

/** The refusal for a snapshot that does not fit: one line, every reason. */
export function mismatchError(reference: string, mismatches: readonly string[]): Error {
  return new ErrSnapshotMismatch(
    `snapshot ${reference} does not fit this node (sandboxes here cold-boot): ${mismatches.join("; ")}`,
  );
}

function accelFromEnv(): AccelChoice {
  const v = process.env[ENV_ACCEL];
  return v === "kvm" || v === "tcg" ? v : "auto";
}

function short(digest: string): string {
  return digest.slice(0, 19);
}
