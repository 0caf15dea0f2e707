import { availableParallelism, totalmem } from "node:os";
import { resolve as resolvePath } from "node:path";
import { ErrInvalidConfig } from "../errors.js";
import {
  DEFAULT_CPUS,
  DEFAULT_DISK_SIZE_MB,
  DEFAULT_IMAGE,
  DEFAULT_MEMORY_MB,
  DEFAULT_TIMEOUT_SECONDS,
  ENV_ACCEL,
  ENV_DEFAULT_IMAGE,
  ENV_KERNEL,
  MAX_TIMEOUT_SECONDS,
  MIN_DISK_SIZE_MB,
  MIN_MEMORY_MB,
} from "./defaults.js";
import type { HostEnv } from "./env-vars.js";
import {
  checkAbsoluteGuestPath,
  checkBoolean,
  checkEnvRecord,
  checkCheckpointName,
  checkHostname,
  checkHostPath,
  checkImageRef,
  checkIntegerAtLeast,
  checkOneOf,
  checkPositiveNumber,
  checkTimeoutSeconds,
  checkUserSpec,
} from "./field-checks.js";
import type { AccelChoice, ResolvedSandboxConfig, SandboxOptions } from "./options.js";
import { SANDBOX_OPTION_KEYS } from "./options.js";
import { publicConfig, type SandboxPlan } from "./plan.js";
import { checkMounts } from "./mount-checks.js";
import { checkFileHooks, checkNetworkHooks, secretValues } from "./rule-checks.js";
import { checkNetworkOptions } from "./network-checks.js";
import { checkObserveOptions } from "./observe-checks.js";
import { checkDisks } from "./disks.js";
import { isFileIdentity, newSandboxId } from "../util/index.js";
import { MAX_VOLUME_SIZE_MB } from "../volumes/index.js";

const ACCEL_CHOICES: readonly AccelChoice[] = ["auto", "kvm", "tcg"];

/** An environment default; empty counts as unset, as for the other WHEELLOCK_* variables. */
function envDefault(env: HostEnv, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value === "" ? undefined : value;
}

/**
 * Turns the caller's options into the sandbox plan: defaults applied and every field checked,
 * once, before anything is started. Throws ErrInvalidConfig with one line naming the first bad
 * field (`invalid configuration: cpus must be a finite number > 0, got -1`). `env` supplies
 * the WHEELLOCK_IMAGE / WHEELLOCK_KERNEL / WHEELLOCK_ACCEL defaults; `hostCpus` bounds `cpus`;
 * `id` is the sandbox's (a supervisor picks it before the boot).
 */
export function planSandbox(
  opts: SandboxOptions = {},
  env: HostEnv = process.env,
  hostCpus: number = availableParallelism(),
  id: string = newSandboxId(),
): SandboxPlan {
  const config = resolveFields(opts, env, hostCpus, id);
  return Object.freeze({
    ...config,
    secretValues: Object.freeze(secretValues(opts.secrets)),
    mounts: Object.freeze(checkMounts(opts.mounts)),
    fileHooks: Object.freeze(checkFileHooks(opts.fileHooks)),
    networkHooks: Object.freeze(checkNetworkHooks(opts.networkHooks)),
    ...(opts.onBlockedRequest !== undefined ? { onBlockedRequest: opts.onBlockedRequest } : {}),
  });
}

/** The plan's public view (no secret values, rules or mounts): `sandbox.config`. */
export function resolveSandboxOptions(
  opts: SandboxOptions = {},
  env: HostEnv = process.env,
  hostCpus: number = availableParallelism(),
  id: string = newSandboxId(),
): ResolvedSandboxConfig {
  return publicConfig(planSandbox(opts, env, hostCpus, id));
}

function resolveFields(
  opts: SandboxOptions = {},
  env: HostEnv = process.env,
  hostCpus: number = availableParallelism(),
  id: string = newSandboxId(),
): ResolvedSandboxConfig {
  if (typeof opts !== "object" || opts === null) {
    throw new ErrInvalidConfig("sandbox options must be an object");
  }
  if (Object.hasOwn(opts, "id")) {
    throw new ErrInvalidConfig("id is assigned by wheellock and cannot be set");
  }
  const known: ReadonlySet<string> = new Set(SANDBOX_OPTION_KEYS);
  const unknown = Object.keys(opts).find((key) => !known.has(key));
  if (unknown !== undefined)
    throw new ErrInvalidConfig(`unknown option ${JSON.stringify(unknown)}`);

  const cpus = opts.cpus === undefined ? DEFAULT_CPUS : checkPositiveNumber("cpus", opts.cpus);
  const vcpuCount = Math.ceil(cpus);
  if (vcpuCount > hostCpus) {
    throw new ErrInvalidConfig(
      `cpus ${cpus} needs ${vcpuCount} vCPUs but the host has ${hostCpus} CPUs`,
    );
  }

  const imageFromEnv = envDefault(env, ENV_DEFAULT_IMAGE);
  const accelFromEnv = envDefault(env, ENV_ACCEL);
  const kernelFromEnv = envDefault(env, ENV_KERNEL);
  const kernel =
    opts.kernel !== undefined
      ? checkHostPath("kernel", opts.kernel)
      : kernelFromEnv !== undefined
        ? checkHostPath(ENV_KERNEL, kernelFromEnv)
        : undefined;

  if (
    opts.kernelIdentity !== undefined &&
    (kernel === undefined || !isFileIdentity(opts.kernelIdentity))
  )
    throw new ErrInvalidConfig("kernelIdentity must be dev:ino, with kernel (a node sets it)");

  const network = checkNetworkOptions(opts);
  const resolved: ResolvedSandboxConfig = {
    id,
    image:
      opts.image !== undefined
        ? checkImageRef("image", opts.image)
        : imageFromEnv !== undefined
          ? checkImageRef(ENV_DEFAULT_IMAGE, imageFromEnv)
          : DEFAULT_IMAGE,
    cpus,
    vcpuCount,
    memoryMb:
      opts.memoryMb === undefined
        ? DEFAULT_MEMORY_MB
        : checkIntegerAtLeast("memoryMb", opts.memoryMb, MIN_MEMORY_MB),
    diskSizeMb:
      opts.diskSizeMb === undefined ? DEFAULT_DISK_SIZE_MB : checkDiskSize(opts.diskSizeMb),
    timeoutSeconds:
      opts.timeoutSeconds === undefined
        ? DEFAULT_TIMEOUT_SECONDS
        : checkTimeoutSeconds("timeoutSeconds", opts.timeoutSeconds, MAX_TIMEOUT_SECONDS),
    env: Object.freeze(opts.env === undefined ? {} : checkEnvRecord("env", opts.env)),
    workdir:
      opts.workdir === undefined ? undefined : checkAbsoluteGuestPath("workdir", opts.workdir),
    user: opts.user === undefined ? undefined : checkUserSpec("user", opts.user),
    hostname: opts.hostname === undefined ? id : checkHostname("hostname", opts.hostname),
    privileged: opts.privileged === undefined ? false : checkBoolean("privileged", opts.privileged),
    snapshot:
      opts.snapshot === undefined
        ? env.WHEELLOCK_NO_SNAPSHOT !== "1"
        : checkBoolean("snapshot", opts.snapshot),
    accel:
      opts.accel !== undefined
        ? checkOneOf("accel", opts.accel, ACCEL_CHOICES)
        : accelFromEnv !== undefined
          ? checkOneOf(ENV_ACCEL, accelFromEnv, ACCEL_CHOICES)
          : "auto",
    ...(opts.fromCheckpoint !== undefined
      ? { fromCheckpoint: checkCheckpointName("fromCheckpoint", opts.fromCheckpoint) }
      : {}),
    // Absolute now, so a later chdir by the host program cannot change which kernel boots.
    kernel: kernel === undefined ? undefined : resolvePath(kernel),
    kernelIdentity: opts.kernelIdentity,
    ...network,
    ...checkObserveOptions(opts, network.networkIntercept && !network.noNetwork),
    disks: Object.freeze(
      opts.disks === undefined
        ? []
        : checkDisks(
            opts.disks,
            Object.keys(opts.mounts ?? {}).map((p) => p.replace(/(.)\/+$/, "$1")),
          ),
    ),
  };
  checkHostMemory(resolved.memoryMb);
  return Object.freeze(resolved);
}

/**
 * The writable layer is an ext4 image: past 16 TiB (4 KiB blocks) neither mkfs nor a host
 * ext4 file takes it, and the size overflowed a raw Node error ("len" out of range).
 */
function checkDiskSize(value: unknown): number {
  const sizeMb = checkIntegerAtLeast("diskSizeMb", value, MIN_DISK_SIZE_MB);
  if (sizeMb > MAX_VOLUME_SIZE_MB) {
    throw new ErrInvalidConfig(
      `diskSizeMb ${sizeMb} is more than ${MAX_VOLUME_SIZE_MB} (16 TiB, the largest ext4 file system)`,
    );
  }
  return sizeMb;
}

/**
 * A guest cannot have more memory than the host has RAM: QEMU would fail at boot with a
 * multi-line ftruncate error (or a node would answer "not running"), so refuse it here, in the
 * one place the SDK, CLI, REST node and rpc all plan through.
 */
function checkHostMemory(memoryMb: number): void {
  const hostMb = Math.floor(totalmem() / 2 ** 20);
  if (memoryMb > hostMb) {
    throw new ErrInvalidConfig(
      `memoryMb ${memoryMb} is more than the host's ${hostMb} MiB of memory`,
    );
  }
}
