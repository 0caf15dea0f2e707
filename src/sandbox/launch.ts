/**
 * Starting a sandbox from its plan: assets, network, disk locks, run dir, mounts, then the VM.
 * Each resource goes onto the sandbox's ResourceStack the moment it exists, so a start that
 * fails half-way, a `close()` and the process-exit hook all release through the same list.
 */
import { rename } from "node:fs/promises";
import { join } from "node:path";
import { CmdlineKey, kernelArg } from "../channel/index.js";
import { checkForkMounts, mountsForCopy, type SandboxPlan } from "../config/index.js";
import { ErrVMNotRunning } from "../errors.js";
import { runDir } from "../paths.js";
import { prepareAssets } from "../setup/index.js";
import { newSandboxId, removeTreeSync, ResourceStack, type ReleaseError } from "../util/index.js";
import { detectAccel } from "../vmm/index.js";
import type { BootRequest } from "./boot.js";
import { SandboxDisks } from "./disks.js";
import { EventHub } from "./events.js";
import { FuseMounts } from "./fuse-mounts.js";
import { applyGuestSettings } from "./guest-apply.js";
import { configureGuest, holdGuestProcesses } from "./guest-config.js";
import { resolveImage, type ImageSelection } from "./image.js";
import { prepareNetwork } from "./network.js";
import { SandboxObserver } from "./observer.js";
import { createRunDir, removeRunDir, removeRunDirAtExit, sweepStaleRunDirs } from "./run-dir.js";
import { captureVm, checkpointVm, type Capture, type CheckpointSource } from "./checkpoint.js";
import {
  planWithCapturedDisks,
  planWithCheckpointDisks,
  pinDiskIdentities,
  privateDiskPath,
} from "./checkpoint-disks.js";
import { loadCheckpoint } from "./checkpoint-store.js";
import {
  checkpointRestoreSource,
  dropMaterializedMounts,
  dropMaterializedState,
  restoreVm,
} from "./checkpoint-start.js";
import { mayUseSnapshot, snapshotInputsFor } from "./snapshot-policy.js";
import { snapshotKey } from "./snapshot-store.js";
import { startVm } from "./start-vm.js";
import { VmSandbox, type ForkOptions } from "./vm-sandbox.js";

/** For wheellock's own supervisor, pool, benchmarks and tests; not part of the public API. */
export interface LaunchInternals {
  /** Extra raw virtio-serial ports (benchmarks). */
  rawPorts?: { name: string; socketPath: string }[];
  /** Where the serial console goes (default: the run dir, removed with it). */
  consoleLogPath?: string;
  /** A pool starts the `timeoutSeconds` clock when it hands the sandbox out, not now. */
  deferTimeout?: boolean;
  /**
   * Boot this root disk instead of resolving `plan.image` (the image builder: a stage's root
   * disk that is in no image record).
   */
  image?: ImageSelection;
  /**
   * Keep the writable upper disk: on close, once the VM has powered off, it is moved to this
   * host path instead of being removed with the run dir (the image builder reads a RUN step's
   * layer from it). The guest gets up to KEEP_UPPER_GRACE_MS to unmount it cleanly.
   */
  keepUpperDisk?: string;
  /** Nothing is attributed, and execs get no cgroups in the guest (the bench's baseline). */
  noAttribution?: boolean;
  /**
   * Tests only: an exec's child joins its cgroup after `fork` instead of starting in it with
   * `clone3(CLONE_INTO_CGROUP)`, the path of guest kernels before 5.7 (both shipped kernels
   * take clone3, so that path is otherwise never run).
   */
  attributionByFork?: boolean;
  /** Resume this capture of another sandbox (a fork) instead of booting. */
  restoreFrom?: Capture;
  /**
   * Always power the guest off cleanly on close, even when nothing of it is kept (the
   * supervisor: a detached sandbox's stop stays the orderly one its console log shows).
   */
  cleanPoweroff?: boolean;
  /**
   * The caller never reads `usage()` after close (the CLI's foreground `run`): close skips the
   * final figures, a round trip to the guest, unless someone iterates `events()` then.
   */
  noFinalUsage?: boolean;
}

/** A kept disk must be unmounted cleanly: the guest's sync can take a while under TCG. */
const KEEP_UPPER_GRACE_MS = 60_000;

/** How long the guest may take to power off cleanly before QEMU is killed. */
const POWEROFF_GRACE_MS = 2000;

function warnCleanup(err: ReleaseError): void {
  process.emitWarning(
    `wheellock: ${err.message} (run \`wheellock gc\`)`,
    "WheellockCleanupWarning",
  );
}

function debugWarn(message: string): void {
  if (process.env.WHEELLOCK_DEBUG === "1") process.stderr.write(`wheellock: ${message}\n`);
}

export async function launchVmSandbox(
  given: SandboxPlan,
  internal: LaunchInternals = {},
): Promise<VmSandbox> {
  const root = runDir();
  const copied = copyPlan(given, root, internal.restoreFrom);
  // A fork's read-write disks are copies of its source's, its own: no volume lock. So are
  // every disk of a copy of a checkpoint (written out of the store into its run dir).
  const capturedDisks =
    internal.restoreFrom?.disks ??
    (copied.fromCheckpoint !== undefined ? copied.disks.map((d) => d.hostPath) : []);
  const plan = pinDiskIdentities(copied, capturedDisks);
  const image = internal.image ?? (await resolveImage(plan.image));
  sweepStaleRunDirs(root);
  const assets = await prepareAssets({ kernel: plan.kernel, log: () => undefined });
  const accel = detectAccel(plan.accel);
  const events = new EventHub();
  const resources = new ResourceStack(warnCleanup);
  let sandbox: VmSandbox | undefined;
  const observer = new SandboxObserver(
    plan,
    events,
    (err) => sandbox?.fail(err),
    !internal.noAttribution,
  );
  const startSpan = observer.tracer.startSandbox();
  try {
    // Before the run dir exists: a bad CA file or policy script fails with nothing to clean.
    const network = await prepareNetwork(plan, observer);
    resources.defer("network", () => network.close());
    const disks = SandboxDisks.attach(plan.id, plan.disks, capturedDisks);
    resources.defer(
      "disk locks",
      () => disks.release(),
      () => disks.release(),
    );
    const dir = createRunDir(root, plan.id);
    resources.defer(
      "run dir",
      () => removeRunDir(dir),
      () => removeRunDirAtExit(dir),
    );
    const keepUpper = internal.keepUpperDisk;
    if (keepUpper !== undefined)
      // Released after the VM stopped and before the run dir goes.
      // (A VM that never booted has none: the caller finds no file there.)
      resources.defer("upper disk", () =>
        rename(join(dir, "upper.ext4"), keepUpper).catch(() => undefined),
      );
    // Every VM that may be saved or restored has the FUSE port (same devices for all), and
    // gets its mounts after the boot or restore (guest-apply.ts).
    const snapshotCandidate = mayUseSnapshot(plan, internal);
    // The FUSE port is there whether or not this start may use a snapshot (`snapshot: false`
    // too): a checkpoint or a fork's capture restores only into the same device set.
    let mounts: FuseMounts | undefined;
    if (
      Object.keys(plan.mounts).length > 0 ||
      mayUseSnapshot({ ...plan, snapshot: true }, internal)
    ) {
      mounts = await FuseMounts.open(
        dir,
        plan.mounts,
        (err) =>
          sandbox?.fail(new ErrVMNotRunning(`sandbox ${plan.id} mounts failed: ${err.message}`)),
        {
          fileHooks: plan.fileHooks,
          onFileEvent: (file) => observer.fileEvent(file),
          beforeRequest: (caller) => observer.beforeFileRequest(caller),
        },
        plan.diskSizeMb * 1024 * 1024,
      );
      const opened = mounts;
      resources.defer("mounts", () => opened.close());
    }
    const rawPorts = [...(mounts ? [mounts.rawPort] : []), ...(internal.rawPorts ?? [])];
    const bootRequest: BootRequest = {
      runDir: dir,
      accel: accel.accel,
      cpus: plan.vcpuCount,
      memoryMb: plan.memoryMb,
      kernelPath: assets.kernel.vmlinuzPath,
      ...(plan.kernelIdentity !== undefined ? { kernelIdentity: plan.kernelIdentity } : {}),
      initramfsPath: assets.initramfsPath,
      kernelArgs: [
        ...(plan.privileged ? [kernelArg(CmdlineKey.Privileged, "1")] : []),
        ...(internal.noAttribution ? [kernelArg(CmdlineKey.Attribution, "0")] : []),
        ...(internal.attributionByFork && !internal.noAttribution
          ? [kernelArg(CmdlineKey.Attribution, "fork")]
          : []),
        // A VM that may be saved or restored gets its disks by DISK_MOUNT (guest-apply.ts).
        ...(snapshotCandidate ? [] : disks.kernelArgs),
        // In the snapshot key like every argument: sandboxes with mounts restore from their own.
        ...(Object.keys(plan.mounts).length > 0 ? [kernelArg(CmdlineKey.Mounts, "1")] : []),
      ],
      imagePath: image.ext4Path ?? assets.image.ext4Path,
      upperDiskPath: join(dir, "upper.ext4"),
      extraDisks: disks.vmDisksWith(
        capturedDisks.map((c, i) => (c === undefined ? undefined : privateDiskPath(dir, i))),
      ),
      ...(rawPorts.length > 0 ? { rawPorts } : {}),
      ...(internal.consoleLogPath ? { consoleLogPath: internal.consoleLogPath } : {}),
      network: network.link,
      bootTimeoutMs: accel.accel === "kvm" ? 30_000 : 120_000,
      configureGuest: (channel) => configureGuest(channel, plan.hostname),
      onFatal: (err) =>
        sandbox?.fail(new ErrVMNotRunning(`sandbox ${plan.id} stopped: ${err.message}`)),
      resources,
    };
    const vmInputs = snapshotInputsFor(plan, bootRequest);
    const snapshot = snapshotCandidate ? vmInputs : undefined;
    const vmKey = snapshotKey(vmInputs);
    const restoreSource =
      internal.restoreFrom !== undefined
        ? { ...internal.restoreFrom, label: "the fork's capture" }
        : plan.fromCheckpoint !== undefined
          ? await checkpointRestoreSource(plan.fromCheckpoint, dir, vmKey, plan)
          : undefined;
    if (restoreSource?.mountContents) {
      // Before the copied guest is served (attach): its memory and overlay mounts' files.
      await mounts?.importContents(restoreSource.mountContents, restoreSource.label);
      dropMaterializedMounts(restoreSource, dir);
    }
    const vm = restoreSource
      ? await restoreVm(bootRequest, restoreSource, vmKey)
      : await startVm(bootRequest, { diskSizeMb: plan.diskSizeMb, snapshot, warn: debugWarn });
    if (restoreSource) dropMaterializedState(restoreSource, dir);
    const copySource: CheckpointSource = {
      plan,
      saver: vm.stateSaver,
      runDir: dir,
      upperDiskPath: bootRequest.upperDiskPath,
      namedRam: vm.namedRam,
      vmKey,
      baseSnapshotKey: vm.restored && !restoreSource && snapshot ? vmKey : undefined,
      fuseSession: () => mounts?.exportSession(),
      exportMounts: async (dataPath) => mounts?.exportContents(dataPath),
      openStreams: () => vm.agent.openStreams,
      onStuck: (err) => sandbox?.fail(new ErrVMNotRunning(err.message)),
      holdProcesses: () => holdGuestProcesses(vm.agent),
      onResumed: () => configureGuest(vm.agent, plan.hostname),
    };
    // Released first: the guest powers off cleanly (QEMU is killed after a grace period)
    // before anything it uses goes. The boot put QEMU itself on the stack already.
    const throwaway = isThrowaway(plan, internal);
    resources.defer("vm", async () => {
      if (throwaway) vm.qemu.kill();
      else if (!vm.agent.closed) vm.agent.poweroff();
      const grace = keepUpper !== undefined ? KEEP_UPPER_GRACE_MS : POWEROFF_GRACE_MS;
      await vm.qemu.stop(sandbox?.failed ? 0 : grace);
      vm.agent.close(new ErrVMNotRunning(`sandbox ${plan.id} is closed`));
    });
    sandbox = new VmSandbox({
      plan,
      accel: accel.accel,
      bootMs: vm.hostBootMs,
      restored: vm.restored,
      agent: vm.agent,
      qemu: vm.qemu,
      image,
      events,
      network,
      mounts: mounts && mounts.guestPaths.length > 0 ? mounts : undefined,
      resources,
      observer,
      finalUsage: internal.noFinalUsage !== true,
      copies: {
        checkpoint: (name) => checkpointVm(copySource, name),
        fork: (count, options) => forkVm(copySource, count, options),
      },
    });
    // A copy's guest has its mounts bound to the original's FUSE session: served on, no MOUNT.
    if (restoreSource?.fuse) mounts?.resumeSession(restoreSource.fuse);
    mounts?.attach();
    // A restore configured the guest as its first request (BootRequest.configureGuest).
    await applyGuestSettings(vm.agent, {
      hostname: plan.hostname,
      mountPaths: restoreSource ? [] : (mounts?.guestPaths ?? []),
      disks: snapshotCandidate && !restoreSource ? disks.guestMounts : [],
      networkSetup: network.guestSetup,
      configured: vm.restored,
    });
    observer.attach(vm.agent, vm.qemu.pid, network.egress?.allowlist);
    sandbox.watch();
    if (!internal.deferTimeout) sandbox.startTimeout();
    startSpan.end(vm.restored);
    return sandbox;
  } catch (err) {
    startSpan.end(false, err as Error);
    if (sandbox) await sandbox.close();
    else await resources.release();
    throw err;
  }
}

/**
 * The plan a sandbox starts with: a fork's copied disks and a copy of a checkpoint's disks
 * are private files in its run dir (`root`/id, created next); any other plan as it is.
 */
function copyPlan(plan: SandboxPlan, root: string, capture: Capture | undefined): SandboxPlan {
  const dir = join(root, plan.id);
  if (capture !== undefined) return planWithCapturedDisks(plan, dir, capture.disks);
  if (plan.fromCheckpoint === undefined) return plan;
  return planWithCheckpointDisks(plan, dir, loadCheckpoint(plan.fromCheckpoint).disks);
}

/**
 * True when nothing the guest wrote outlives the VM: its writable disk is removed with the
 * run dir, and it has no mounts (a FUSE write the guest still caches), no disks or volumes
 * (their filesystems must be unmounted cleanly) and no kept upper disk. Such a VM is killed on
 * close instead of powered off: the guest's poweroff (kill every process, sync, unmount) is
 * ~100 ms under TCG, and everything it would flush is thrown away (the agent's poweroff
 * SIGKILLs the guest's processes anyway: none of them gets a graceful stop either way).
 */
export function isThrowaway(plan: SandboxPlan, internal: LaunchInternals): boolean {
  return (
    internal.keepUpperDisk === undefined &&
    internal.cleanPoweroff !== true &&
    plan.disks.length === 0 &&
    Object.keys(plan.mounts).length === 0
  );
}

/**
 * `sandbox.fork(count)`: one capture of the running VM, then `count` sandboxes resumed from
 * it at once, each with a new id (and hostname), its own disk copy and network link, and a
 * CONFIGURE of its own (clock, entropy), and the source's mounts as `forkMounts` says (default:
 * an overlay of its own over each read-write host directory). If any fails, the others are closed.
 */
async function forkVm(
  source: CheckpointSource,
  count: number,
  options: ForkOptions,
): Promise<VmSandbox[]> {
  const mode = checkForkMounts("forkMounts", options.forkMounts ?? "overlay");
  const copyMounts = mountsForCopy(source.plan.mounts, mode);
  const capture = await captureVm(source);
  try {
    const starts = await Promise.allSettled(
      Array.from({ length: count }, () => {
        const id = newSandboxId();
        const plan: SandboxPlan = Object.freeze({
          ...source.plan,
          id,
          hostname: id,
          mounts: Object.freeze(copyMounts),
          timeoutSeconds: options.timeoutSeconds ?? source.plan.timeoutSeconds,
        });
        return launchVmSandbox(plan, { restoreFrom: capture });
      }),
    );
    const started = starts.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
    const failed = starts.find((s): s is PromiseRejectedResult => s.status === "rejected");
    if (failed) {
      await Promise.all(started.map((copy) => copy.close()));
      throw failed.reason;
    }
    return started;
  } finally {
    removeTreeSync(capture.dir);
  }
}
