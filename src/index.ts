/**
 * wheellock SDK: `const sb = await Sandbox.create(); await sb.exec("echo hi"); await sb.close();`
 */
export {
  Sandbox,
  NodeSandbox,
  KubernetesSandbox,
  type ConnectOptions,
  type DetachedStartOptions,
  type KubernetesCreateOptions,
  type KubernetesOptions,
  type RemoteCreateOptions,
  type RemoteOptions,
} from "./sdk/index.js";
export { VmSandbox, ExecProcess, DEFAULT_IMAGE_NAME } from "./sandbox/index.js";
export type { RemoteSandbox } from "./remote/index.js";
export type {
  SandboxApi,
  AllowlistState,
  CheckpointInfo,
  ForkOptions,
  FileData,
  MkdirOptions,
  PortConnection,
  RemoveOptions,
  StatOptions,
  WriteFileOptions,
  SpawnOptions,
  SandboxPool,
  PoolOptions,
  ExecExit,
  ExecOptions,
  ExecResult,
  OutputChunk,
  SandboxEvent,
  ExecEventInfo,
  NetworkEventInfo,
  FileInfo,
  SandboxFileEventInfo,
} from "./sandbox/index.js";
// Attribution, live approval, audit suggestions, usage and budgets (docs/OBSERVE.md).
export { suggestAllowlist } from "./observe/index.js";
export type {
  ApprovalDecision,
  ApprovalEventInfo,
  BlockedRequest,
  Budgets,
  ExecAttribution,
  SandboxUsage,
  SuggestedEntry,
  SuggestedPolicy,
  TrafficTotals,
} from "./observe/index.js";
export type {
  SandboxOptions,
  ResolvedSandboxConfig,
  AccelChoice,
  MountConfig,
  MountType,
  DiskConfig,
  ResolvedDisk,
  SecretOption,
  NetworkHookRule,
  ConfigureOptions,
} from "./config/index.js";
export type { NodeInfo, SandboxView } from "./serve/index.js";
// Named volumes (`wheellock volume ...`) to attach with `disks: [{ volume, guestPath }]`.
export {
  createVolume,
  listVolumes,
  removeVolume,
  ErrVolumeInUse,
  ErrVolumeNotFound,
} from "./volumes/index.js";
export type { VolumeInfo } from "./volumes/index.js";
// Network hooks: the shapes of rules, callbacks and what they return.
export type {
  HookRule,
  RequestHookRule,
  ResponseHookRule,
  RequestHookContext,
  RequestHookResult,
  ResponseHookContext,
  ResponseHookResult,
  BodyReplacement,
  DirectResponse,
} from "./net/http-policy/index.js";
// Filesystems served to the guest: write your own provider against VfsProvider.
export {
  MemoryProvider,
  HostDirProvider,
  ReadOnlyProvider,
  OverlayProvider,
  RouterProvider,
  QuotaProvider,
  VfsError,
} from "./vfs/index.js";
export type {
  VfsProvider,
  VfsHandle,
  VfsStat,
  VfsDirEntry,
  VfsOpenFlags,
  VfsOwner,
  VfsSetattr,
  VfsStatfs,
  VfsQuota,
  RenameMode,
  FileHookRule,
  FileHookVerdict,
  FileOp,
  FileOpInfo,
  FileEventInfo,
  FileErrnoName,
} from "./vfs/index.js";
// The reference API's helpers, under TypeScript names.
export {
  shellQuote,
  shellQuote as shellQuoteArgs,
  shellSplit,
  composeCommand,
  parseVolumeMount,
  validateGuestMount,
} from "./config/index.js";
export type { ImageCommandConfig, VolumeMount } from "./config/index.js";
export { networkEventError, type PolicyErrorCode } from "./sandbox/index.js";
export type { SandboxRecord, SandboxStatus, PortBinding, GcReport } from "./state/index.js";
/** Long-lived sandboxes by id, as `wheellock kill`, `rm` and `gc` manage them. */
export { stopSandbox, removeSandbox, collectGarbage } from "./state/index.js";
// Images: pull ahead of time (with a platform or progress), push, import tarballs, list, prune.
export {
  ImageStore,
  pullImage,
  pushImage,
  importImage,
  parseReference,
  parsePlatform,
} from "./image/index.js";
export type {
  ImageRecord,
  ImageRuntimeConfig,
  PullOptions,
  PushOptions,
  PushResult,
  ImportOptions,
  PullProgress,
  Platform,
} from "./image/index.js";
// Images built from Dockerfiles, every RUN in a sandbox (docs/BUILD.md).
export { buildImage, plainBuildProgress } from "./build/index.js";
export type { BuildOptions, BuildResult, BuildSecretOption, BuildProgress } from "./build/index.js";
export * from "./errors.js";
