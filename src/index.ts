/**
 * wheellock SDK: `const sb = await Sandbox.create(); await sb.exec("echo hi"); await sb.close();`
 */
export { Sandbox, ExecProcess, DEFAULT_IMAGE_NAME } from "./sandbox/index.js";
export type {
  SpawnOptions,
  ExecExit,
  ExecOptions,
  ExecResult,
  OutputChunk,
  SandboxEvent,
  ExecEventInfo,
  FileInfo,
} from "./sandbox/index.js";
export type { SandboxOptions, ResolvedSandboxConfig, AccelChoice } from "./config/index.js";
export { shellQuote, shellSplit } from "./config/index.js";
export type { RemoteSandbox } from "./supervisor/client.js";
export type { SandboxRecord, SandboxStatus, PortBinding } from "./state/index.js";
export * from "./errors.js";
