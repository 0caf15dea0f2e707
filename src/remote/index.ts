/**
 * The sandbox operation protocol: `SandboxApi` carried over any byte stream. The client is
 * `RemoteSandbox` (given a connector); the server is `serveConnection` (given a SandboxApi).
 * A supervisor's unix socket and `serve`'s WebSockets are two transports of the same thing.
 */
export { RemoteSandbox } from "./client.js";
export type { Connector } from "./client-conn.js";
export { serveConnection, type ServeHooks } from "./serve.js";
export {
  MAX_FRAME_BYTES,
  SPARE_HEADER,
  webSocketConnector,
  webSocketDuplex,
  type WebSocketTarget,
} from "./websocket.js";
export type { PooledConnector, SparePoolOptions } from "./websocket-pool.js";
export {
  encodeJson,
  encodeMessage,
  endsBothWays,
  isClientOperationMessage,
  MAX_MESSAGE_BYTES,
  MessageReader,
  Msg,
  parseJson,
  wireError,
  type OperationName,
  type OperationRequest,
  type WireError,
} from "./protocol.js";
export { nodeConnectError } from "./node-connect-error.js";
export { OpEndWatch } from "./op-end-watch.js";
