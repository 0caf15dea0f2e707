/**
 * `wheellock serve`: this machine as a node that serves sandboxes over the network — a REST API
 * for their lifecycle and a WebSocket data plane that carries the sandbox operation protocol
 * (src/remote), with operator and per-sandbox tokens. See docs/REMOTE.md.
 */
export { startNode, type NodeOptions, type RunningNode } from "./node.js";
export { SupervisedHost } from "./supervised-host.js";
export { SingleHost } from "./single-host.js";
export type { HostedSandbox, PreparedOperation, SandboxHost } from "./host.js";
export { DEFAULT_LISTEN, parseListen, isLoopback } from "./listen.js";
export { defaultTokenPath } from "./node-identity.js";
export { readSingleOptions } from "./single-options.js";
export { hostPathRoots } from "./node-options.js";
export type { NodeInfo } from "./node-info.js";
export type { SandboxView } from "./routes.js";
