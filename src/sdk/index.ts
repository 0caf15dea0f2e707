/** The SDK: `Sandbox.create/connect/startDetached/list/pool` and the reference's helpers. */
export {
  Sandbox,
  type ConnectOptions,
  type CreateInternals,
  type DetachedStartOptions,
  type KubernetesCreateOptions,
  type RemoteCreateOptions,
} from "./sandbox.js";
export {
  createKubernetes,
  KubernetesSandbox,
  type KubernetesInternals,
  type KubernetesOptions,
} from "./kubernetes.js";
export type { ClaimObject, KubeClaims } from "./kube-claims.js";
export {
  ENV_REMOTE,
  ENV_TOKEN,
  createRemote,
  inspectRemote,
  listRemote,
  NodeSandbox,
  readRemoteLog,
  removeRemote,
  stopRemote,
  resolveRemote,
  type RemoteOptions,
  type ResolvedRemote,
} from "./remote.js";
