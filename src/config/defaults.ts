/**
 * Defaults and limits for sandbox options. The resource defaults match the reference
 * (matchlock `pkg/api/config.go`) so the same workload gets the same VM size on both tools.
 */

/** Image used when `image` is not given and `WHEELLOCK_IMAGE` is unset. */
export const DEFAULT_IMAGE = "default";
export const DEFAULT_CPUS = 1;
export const DEFAULT_MEMORY_MB = 512;
export const DEFAULT_DISK_SIZE_MB = 5120;
export const DEFAULT_TIMEOUT_SECONDS = 300;

/**
 * Below this the Debian kernel plus our initramfs does not reliably boot, and a writable
 * upper ext4 of less is mostly filesystem metadata.
 */
export const MIN_MEMORY_MB = 64;
export const MIN_DISK_SIZE_MB = 64;

/**
 * Node's timers hold at most 2^31-1 ms (~24.8 days); a longer delay fires immediately (with a
 * warning) instead of waiting, which would stop the sandbox at once. Longer runs use 0.
 */
export const MAX_TIMEOUT_SECONDS = Math.floor((2 ** 31 - 1) / 1000);

/**
 * Environment variables that change defaults (never override an explicit option), so a CI
 * job or a developer can point every sandbox at another image, kernel or accelerator.
 */
export const ENV_DEFAULT_IMAGE = "WHEELLOCK_IMAGE";
export const ENV_KERNEL = "WHEELLOCK_KERNEL";
export const ENV_ACCEL = "WHEELLOCK_ACCEL";
