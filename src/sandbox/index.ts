export { Sandbox } from "./sandbox.js";
export type { SandboxPool, PoolOptions } from "./pool.js";
export type { SpawnOptions } from "./sandbox.js";
export { ExecProcess } from "./exec-process.js";
export type { ExecExit, OutputChunk } from "./exec-process.js";
export type { ExecOptions, ExecResult } from "./exec-collect.js";
export type { SandboxEvent, ExecEventInfo, NetworkEventInfo } from "./events.js";
export type { FileInfo } from "./files.js";
export { DEFAULT_IMAGE_NAME } from "./image.js";
