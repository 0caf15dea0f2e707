/**
 * Sandbox configuration: the SDK's create options and their validated, defaulted form, plus
 * the parsers the CLI shares with it (env flags and files, numeric flags, durations) and the
 * command helpers (Docker ENTRYPOINT/CMD composition, POSIX shell quoting).
 */
export type {
  AccelChoice,
  ResolvedSandboxConfig,
  ResolvedSecret,
  SandboxOptions,
  SecretOption,
} from "./options.js";
export type { NetworkHookRule } from "./hook-rule.js";
export { MAX_CA_PEM_BYTES, SECRET_NAME_RE } from "./intercept-checks.js";
export {
  DEFAULT_APPROVAL_TIMEOUT_MS,
  DEFAULT_MAX_PENDING_APPROVALS,
  type OnBlockedRequest,
} from "./observe-checks.js";
export { checkCheckpointName } from "./field-checks.js";
export { planSandbox, resolveSandboxOptions } from "./resolve.js";
export {
  configureNeedsIntercept,
  planConfigure,
  type ConfigureOptions,
  type ConfigurePlan,
} from "./configure.js";
export { MAX_POLICY_SCRIPT_BYTES, type PolicyScriptSource } from "./policy-script-source.js";
export {
  planFromJson,
  planFromValue,
  planToJson,
  publicConfig,
  remoteOptionsJson,
  type SandboxPlan,
} from "./plan.js";
export { parsePublish, type PortBinding } from "./publish.js";
export {
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
export { isSandboxId, newSandboxId } from "../util/index.js";
export {
  envNameProblem,
  envValueProblem,
  parseEnvFlag,
  type EnvAssignment,
  type HostEnv,
} from "./env-vars.js";
export { parseEnvFile } from "./env-file.js";
export { mergeEnv } from "./env-merge.js";
export { shellQuote } from "./shell-quote.js";
export { shellSplit } from "./shell-split.js";
export {
  composeCommand,
  withEntrypointOverride,
  type ImageCommandConfig,
} from "./compose-command.js";
export { parseCount, parseCpus, parseDurationSeconds, parseMemoryMb } from "./flag-values.js";
export {
  DEFAULT_WORKSPACE,
  parseVolumeMount,
  validateGuestMount,
  validateGuestPathWithinWorkspace,
  type MountConfig,
  type MountType,
  type VolumeMount,
} from "./volumes.js";
export {
  FORK_MOUNTS_MODES,
  checkForkMounts,
  copyableMountProblem,
  mountsForCopy,
  type ForkMountsMode,
} from "./fork-mounts.js";
export {
  MAX_DISKS,
  checkDisks,
  parseDiskSpec,
  type DiskConfig,
  type ResolvedDisk,
} from "./disks.js";
export { ownDirConflict } from "./own-dirs.js";
