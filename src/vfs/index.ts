/**
 * The host side of guest filesystems: a FUSE server speaking the kernel's wire protocol over
 * any byte stream, and the providers it serves. No VM needed; see docs/ARCHITECTURE.md.
 */
export {
  FuseServer,
  withRenamedFileIds,
  type FuseServerOptions,
  type FuseSessionState,
} from "./fuse-server.js";
export {
  FuseFramer,
  encodeRequest,
  decodeInHeader,
  type FuseInHeader,
  type FuseRequest,
} from "./fuse-framer.js";
export { VfsError, Errno, toErrno } from "./errors.js";
export { checkName } from "./names.js";
export type {
  RenameMode,
  VfsDirEntry,
  VfsFileType,
  VfsHandle,
  VfsOpenFlags,
  VfsCaller,
  VfsOwner,
  VfsProvider,
  VfsSetattr,
  VfsStat,
  VfsStatfs,
} from "./provider.js";
export {
  MemoryProvider,
  DEFAULT_MEMORY_BYTES,
  type MemoryProviderOptions,
} from "./providers/memory.js";
export { QuotaProvider } from "./providers/quota.js";
export {
  quotaOfSize,
  QUOTA_BLOCK_BYTES,
  QUOTA_BYTES_PER_INODE,
  type VfsQuota,
} from "./providers/quota-ledger.js";
export { HostDirProvider, type HostDirOptions } from "./providers/host-dir.js";
export { ReadOnlyProvider } from "./providers/read-only.js";
export { RouterProvider, routedFileId } from "./providers/router.js";
export { SingleFileProvider } from "./providers/single-file.js";
export { OverlayProvider } from "./providers/overlay.js";
export {
  BlobFile,
  exportTree,
  importTree,
  type BlobSink,
  type BlobSource,
  type CopyableContents,
  type MountImage,
  type TreeEntry,
} from "./tree-image.js";
export { openHostOverlay, type HostOverlayOptions } from "./providers/overlay-host.js";
export { MAX_WRITE_BYTES } from "./fuse-constants.js";
export {
  HookedProvider,
  compileFileHooks,
  FILE_OPS,
  type FileErrnoName,
  type FileEventInfo,
  type FileHookRule,
  type FileHookVerdict,
  type FileOp,
  type FileOpInfo,
} from "./hooks/index.js";
export { typeBits, type CacheTimeouts } from "./fuse-reply.js";
export type { HostProbe, ProbedStat } from "./stat-signature.js";
export { isWithin } from "./names.js";
export {
  FuseRequestStats,
  fuseRequestStats,
  type OpcodeStat,
  type RequestStatsSnapshot,
} from "./request-stats.js";
