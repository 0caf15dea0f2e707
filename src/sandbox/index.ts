/**
 * One sandbox, in this process: the `SandboxApi` interface every kind of sandbox implements,
 * and `VmSandbox`, the one whose QEMU this process runs (launched from a plan).
 */
export type {
  AllowlistState,
  CheckpointInfo,
  FileData,
  FileInfo,
  MkdirOptions,
  PortConnection,
  RemoveOptions,
  SandboxApi,
  SpawnOptions,
  StatOptions,
  WriteFileOptions,
} from "./api.js";
export { VmSandbox, type ForkOptions } from "./vm-sandbox.js";
export { withCheckpointDefaults } from "./checkpoint-start.js";
export {
  checkpointsRoot,
  listCheckpoints,
  loadCheckpoint,
  removeCheckpoint,
  type CheckpointManifest,
} from "./checkpoint-store.js";
export { launchVmSandbox, type LaunchInternals } from "./launch.js";
export { SandboxPool, type PoolOptions } from "./pool.js";
export { ExecProcess, type ExecExit, type OutputChunk } from "./exec-process.js";
export { runCollected, type ExecOptions, type ExecResult } from "./exec-collect.js";
export { commandArgv } from "./exec-env.js";
export { signalName, signalNumber } from "./signals.js";
export type {
  SandboxEvent,
  ExecEventInfo,
  NetworkEventInfo,
  FileEventInfo as SandboxFileEventInfo,
} from "./events.js";
export { openEventsFile, writeEventsFile } from "./events-file.js";
export { DEFAULT_IMAGE_NAME, type ImageSelection } from "./image.js";
export { networkEventError, type PolicyErrorCode } from "./network-event-error.js";
// Memory snapshots on this machine: what `wheellock snapshot` lists, pushes, pulls and removes.
export {
  SNAPSHOT_FORMAT_VERSION,
  discardSnapshot,
  listSnapshots,
  readSnapshotMeta,
  snapshotFiles,
  snapshotKey,
  snapshotsRoot,
  writeSnapshot,
  type SnapshotInputs,
  type SnapshotMeta,
  type StoredSnapshot,
} from "./snapshot-store.js";
export { listSnapshotKeys } from "./snapshot-store.js";
