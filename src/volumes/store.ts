/**
 * `wheellock volume create|ls|rm`: named ext4 images under the data directory that sandboxes
 * attach as block devices (`--disk @NAME:/path`). Their data outlives every sandbox.
 */
import { readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { ErrNotFound, WheellockError } from "../errors.js";
import { ErrVolumeInUse, diskHolders } from "./disk-lock.js";
import { checkVolumeName, volumePath, volumesDir } from "./names.js";
import { makePrivateDir } from "../paths.js";

export const DEFAULT_VOLUME_SIZE_MB = 10240;
/** ext4 with a journal needs a few MiB; below this mkfs refuses or leaves no room for data. */
export const MIN_VOLUME_SIZE_MB = 8;
/** 16 TiB: the largest ext4 file system with 4 KiB blocks, and the largest file a host ext4 holds. */
export const MAX_VOLUME_SIZE_MB = 16 * 1024 * 1024;

export interface VolumeInfo {
  readonly name: string;
  /** Apparent size of the image file (the file system's capacity). */
  readonly sizeBytes: number;
  readonly path: string;
}

export class ErrVolumeNotFound extends ErrNotFound {
  constructor(name: string) {
    super(`named volume not found: ${name}`);
  }
}

export async function createVolume(
  rawName: string,
  sizeMb: number = DEFAULT_VOLUME_SIZE_MB,
): Promise<VolumeInfo> {
  const name = checkVolumeName(rawName);
  if (!Number.isInteger(sizeMb) || sizeMb < MIN_VOLUME_SIZE_MB || sizeMb > MAX_VOLUME_SIZE_MB) {
    throw new WheellockError(
      "ErrInvalidConfig",
      `volume size must be a whole number of MB from ${MIN_VOLUME_SIZE_MB} to ${MAX_VOLUME_SIZE_MB} (16 TiB), got ${sizeMb}`,
    );
  }
  const path = volumePath(name);
  makePrivateDir(volumesDir());
  if (await exists(path)) {
    throw new WheellockError("ErrInvalidConfig", `named volume already exists: ${name}`);
  }
  // Root-owned top directory: the guest's root (the default user) owns the file system.
  // Loaded here: the image code is not needed to list, lock or remove volumes.
  const { formatEmptyExt4 } = await import("../image/index.js");
  await formatEmptyExt4(path, sizeMb, { label: name.slice(0, 16), rootOwner: "0:0" });
  return { name, sizeBytes: sizeMb * 1024 * 1024, path };
}

/** Every volume, sorted by name. */
export async function listVolumes(): Promise<VolumeInfo[]> {
  let names: string[];
  try {
    names = await readdir(volumesDir());
  } catch {
    return [];
  }
  const out: VolumeInfo[] = [];
  for (const file of names.filter((n) => n.endsWith(".ext4")).sort()) {
    const path = join(volumesDir(), file);
    const st = await stat(path).catch(() => undefined);
    if (st?.isFile()) out.push({ name: file.slice(0, -".ext4".length), sizeBytes: st.size, path });
  }
  return out;
}

/** Deletes a volume; refuses while a running sandbox has it attached. */
export async function removeVolume(rawName: string): Promise<void> {
  const name = checkVolumeName(rawName);
  const path = volumePath(name);
  if (!(await exists(path))) throw new ErrVolumeNotFound(name);
  const holders = diskHolders(path);
  if (holders.length > 0) {
    throw new ErrVolumeInUse(
      `volume ${name} is in use by sandbox ${holders.map((h) => h.sandboxId).join(", ")}`,
    );
  }
  await rm(path, { force: true });
}

export async function requireVolume(rawName: string): Promise<string> {
  const name = checkVolumeName(rawName);
  const path = volumePath(name);
  if (!(await exists(path))) throw new ErrVolumeNotFound(name);
  return path;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
