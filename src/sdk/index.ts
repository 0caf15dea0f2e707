/** The SDK: `Sandbox.create/connect/startDetached/list/pool` and the reference's helpers. */
export {
  Sandbox,
  type ConnectOptions,
  type CreateInternals,
  type DetachedStartOptions,
  type RemoteCreateOptions,
} from "./sandbox.js";
export {
  ENV_REMOTE,
  ENV_TOKEN,
  createRemote,
  inspectRemote,
  listRemote,
  NodeSandbox,
  readRemoteLog,
  removeRemote,
  resolveRemote,
  type RemoteOptions,
  type ResolvedRemote,
} from "./remote.js";
