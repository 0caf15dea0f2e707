/** Starting a VM: restore from a matching snapshot, else cold boot and save one for next time. */
import { closeSync, rmSync } from "node:fs";
import { truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ErrSetup } from "../errors.js";
import { createEmptyExt4 } from "../image/index.js";
import { ResourceStack } from "../util/index.js";
import { openImageFile, shareSnapshotRam, type VmDisk, type VmStateSaver } from "../vmm/index.js";
import { bootVm, type BootRequest, type BootedVm } from "./boot.js";
import { warmUpForSnapshot } from "./snapshot-warmup.js";
import {
  copySparse,
  discardSnapshot,
  findSnapshot,
  snapshotKey,
  writeSnapshot,
  type SnapshotInputs,
  type StoredSnapshot,
} from "./snapshot-store.js";

export interface StartedVm extends BootedVm {
  /** True when the VM resumed from a snapshot instead of booting. */
  restored: boolean;
}

export interface StartOptions {
  diskSizeMb: number;
  /** Use (or create) the snapshot of these inputs (its key); undefined = always cold boot. */
  snapshot: SnapshotInputs | undefined;
  /** Where snapshot problems are reported; they never fail the start. */
  warn: (message: string) => void;
}

/**
 * Opens each of the sandbox's own disks as the VM's launch will, and closes it again: a disk
 * that does not open (gone, immutable, replaced since it was checked) fails the start here.
 * Inside the restore the same error would read as the snapshot's, which is then discarded for
 * every sandbox that shares it.
 */
function checkDisksOpen(disks: readonly VmDisk[]): void {
  for (const disk of disks) {
    const fd = openImageFile({
      path: disk.path,
      write: !disk.readonly,
      ...(disk.identity !== undefined ? { identity: disk.identity } : {}),
    });
    closeSync(fd);
  }
}

/** A placeholder drive's size: its content is never read (the guest probes the real one). */
const PLACEHOLDER_DISK_BYTES = 1024 * 1024;

/**
 * Starts the sandbox's VM: from a snapshot when a matching one exists (a fraction of a cold
 * boot), otherwise by booting; after a cold boot it saves a snapshot for the next start. The
 * snapshot is taken right after the agent's hello and a warm-up (snapshot-warmup.ts), before
 * anything sandbox-specific (clock, hostname, entropy, commands) reaches the guest, so it
 * holds nothing of this sandbox.
 *
 * With extra disks, even the guest's probe of a drive (its first blocks: the ext4 superblock)
 * would put a sandbox's data into the saved memory: that snapshot is saved from a VM of its
 * own with empty placeholder drives (saveDiskSlotSnapshot), and this sandbox, too, then
 * restores it with its own disks, which the agent mounts after the restore (DISK_MOUNT).
 */
export async function startVm(req: BootRequest, opts: StartOptions): Promise<StartedVm> {
  const key = opts.snapshot ? snapshotKey(opts.snapshot) : undefined;
  const withDisks = (req.extraDisks ?? []).length > 0;
  if (withDisks) checkDisksOpen(req.extraDisks ?? []);
  let snapshot = key ? findSnapshot(key) : undefined;
  if (key && opts.snapshot && !snapshot && withDisks)
    snapshot = await saveDiskSlotSnapshot(req, key, opts.snapshot, opts);
  if (snapshot) {
    try {
      return { ...(await restore(req, snapshot)), restored: true };
    } catch (err) {
      // Never try a snapshot that failed once again: fall back to a cold boot.
      discardSnapshot(snapshot.key);
      opts.warn(
        `snapshot ${snapshot.key} could not be restored, booting: ${(err as Error).message}`,
      );
      clearRunDirForRetry(req.runDir, req.upperDiskPath);
    }
  }
  await createEmptyExt4(req.upperDiskPath, opts.diskSizeMb);
  // A VM with the sandbox's own disks is never saved (see above).
  const saving = key !== undefined && !withDisks;
  // A VM whose state will be saved keeps its RAM in a file (in its run dir, removed with it),
  // so the snapshot's RAM is a copy of that file which restores map instead of loading.
  const memoryPath = join(req.runDir, "ram");
  const vm = await bootVm({
    ...req,
    ...(saving ? { memoryFile: { path: memoryPath, shared: true } } : {}),
  });
  if (saving && key && opts.snapshot) {
    await warmUpForSnapshot(vm.agent);
    const disks = { upperDiskPath: req.upperDiskPath, memoryPath };
    const failure = await capture(vm.stateSaver, key, opts.snapshot, disks);
    if (failure) opts.warn(`saving a snapshot failed (the sandbox is fine): ${failure.message}`);
  }
  return { ...vm, restored: false };
}

/**
 * Boots a VM like `req`'s but with an empty placeholder in each extra-disk slot (same serial,
 * read-only flag and cache mode: what the guest's driver negotiated must fit the real drive),
 * saves its snapshot and stops it. Returns the snapshot, or undefined (warned) on failure;
 * the run dir is left as before.
 */
async function saveDiskSlotSnapshot(
  req: BootRequest,
  key: string,
  inputs: SnapshotInputs,
  opts: StartOptions,
): Promise<StoredSnapshot | undefined> {
  const resources = new ResourceStack();
  const placeholders: VmDisk[] = [];
  try {
    for (const [i, disk] of (req.extraDisks ?? []).entries()) {
      const path = join(req.runDir, `slot${i}.img`);
      await writeFile(path, "", { mode: 0o600 });
      await truncate(path, PLACEHOLDER_DISK_BYTES);
      placeholders.push({ path, serial: disk.serial, readonly: disk.readonly, cache: disk.cache });
    }
    await createEmptyExt4(req.upperDiskPath, opts.diskSizeMb);
    const memoryPath = join(req.runDir, "ram");
    const vm = await bootVm({
      ...req,
      extraDisks: placeholders,
      memoryFile: { path: memoryPath, shared: true },
      onFatal: () => undefined,
      resources,
    });
    await warmUpForSnapshot(vm.agent);
    const disks = { upperDiskPath: req.upperDiskPath, memoryPath };
    const failure = await capture(vm.stateSaver, key, inputs, disks);
    if (failure) throw failure;
  } catch (err) {
    opts.warn(`saving a snapshot with disk slots failed (booting): ${(err as Error).message}`);
  } finally {
    await resources.release();
    clearRunDirForRetry(req.runDir, req.upperDiskPath);
    for (const { path } of placeholders) rmSync(path, { force: true });
  }
  return findSnapshot(key);
}

async function restore(req: BootRequest, snapshot: StoredSnapshot): Promise<BootedVm> {
  // The saved memory expects the disk exactly as it was at save time: each sandbox gets its
  // own copy (sparse, so a few MB), and its writes never reach the snapshot.
  await copySparse(snapshot.upperDiskPath, req.upperDiskPath);
  // The snapshot's RAM file is mapped copy-on-write: shared by every sandbox restored from
  // it through the page cache, never written.
  return bootVm({
    ...req,
    restoreStatePath: snapshot.statePath,
    memoryFile: { path: snapshot.memoryPath, shared: false },
  });
}

/**
 * Saves a snapshot of the running VM. A failed save is returned (the VM runs on without a
 * snapshot); a VM that cannot continue afterwards throws: it would stay paused, and every
 * later operation on the sandbox would wait for it forever.
 */
async function capture(
  saver: VmStateSaver,
  key: string,
  inputs: SnapshotInputs,
  from: { upperDiskPath: string; memoryPath: string },
): Promise<Error | undefined> {
  let paused: { resume(): Promise<void> } | undefined;
  let failure: Error | undefined;
  try {
    await writeSnapshot(
      key,
      async (target) => {
        paused = await saver.save(target.statePath);
        // The VM is stopped: its disk and RAM file match the saved device state.
        await copySparse(from.upperDiskPath, target.upperDiskPath);
        await copySparse(from.memoryPath, target.memoryPath);
        // Restores map it from jailed QEMUs of their own users (vmm/jail.ts).
        shareSnapshotRam(target.memoryPath);
      },
      { inputs },
    );
  } catch (err) {
    failure = err as Error;
  }
  await paused?.resume().catch((err: Error) => {
    throw new ErrSetup(`the VM could not continue after saving a snapshot: ${err.message}`);
  });
  return failure;
}

function clearRunDirForRetry(runDir: string, upperDiskPath: string): void {
  for (const name of [
    "ctl.sock",
    "net.sock",
    "qmp.sock",
    "save.sock",
    "qemu.log",
    "qemu.log.1",
    "ram",
  ]) {
    rmSync(join(runDir, name), { force: true });
  }
  rmSync(upperDiskPath, { force: true });
}
