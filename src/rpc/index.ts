/**
 * `wheellock rpc`: matchlock's JSON-RPC protocol on stdin/stdout (docs/RPC.md), so matchlock's
 * Go, Python and TypeScript SDKs drive wheellock sandboxes unchanged.
 */
export { serveRpc } from "./serve.js";
export {
  RpcSession,
  MAX_LINE_BYTES,
  MAX_QUEUED,
  MAX_RUNNING,
  type RpcSessionOptions,
} from "./session.js";
export { createRpcSandbox } from "./vm-factory.js";
export { mapCreatePayload, type CreatePlan } from "./create-payload.js";
export type { RpcSandbox, SandboxFactory, ImageDefaults } from "./context.js";
export { RpcCode } from "./wire.js";
