/** Small host-side helpers shared by every folder: processes, locks, tools, globs, cleanup. */
export { fdIdentity, fileIdentity, isFileIdentity, pathIdentity } from "./file-identity.js";
export { withFileLock, type FileLockOptions } from "./file-lock.js";
export { compilePathGlob, type PathGlob } from "./path-glob.js";
export {
  pidAlive,
  processCommandLine,
  processCpuSeconds,
  processPeakRssBytes,
  processStartTicks,
  sameProcessAlive,
} from "./process-info.js";
export { ResourceStack, ReleaseError, type Releasable } from "./resource-stack.js";
export {
  exitOnSignal,
  exitOnSignalDuring,
  exitOnUnhandledSignal,
  SignalHandling,
} from "./exit-on-signal.js";
export {
  outputTail,
  runTool,
  runToolOk,
  type RunToolOptions,
  type RunToolResult,
} from "./run-tool.js";
export { findExecutable } from "./which.js";
export { removeTree, removeTreeSync } from "./remove-tree.js";
export { SerialQueue } from "./serial-queue.js";
export { isSandboxId, newSandboxId } from "./sandbox-id.js";
export { isNodeId, nodeSandboxId, parseNodeSandboxId } from "./node-sandbox-id.js";
export {
  CONSOLE_LOG_SEGMENT_BYTES,
  openRingLog,
  previousSegmentPath,
  readRingLogTail,
  ringLogSegments,
} from "./ring-log.js";
export { TerminalSanitizer, sanitizeTerminalText } from "./terminal-text.js";
export { settledWithin } from "./within.js";
