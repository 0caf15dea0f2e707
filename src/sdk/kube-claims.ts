/**
 * The few Kubernetes API calls the SDK's Kubernetes backend makes: create, get, watch and
 * delete agent-sandbox `SandboxClaim`s. Behind one small interface so the backend's logic does
 * not depend on the client library; the implementation uses `@kubernetes/client-node`
 * (kubeconfig, in-cluster service account, exec and OIDC credential plugins), an optional peer
 * dependency loaded on first use, so programs that never reach a cluster do not pay for it.
 */
import { ErrInvalidConfig, ErrVMNotRunning } from "../errors.js";

export const CLAIM_GROUP = "extensions.agents.x-k8s.io";
export const CLAIM_VERSION = "v1beta1";
export const CLAIM_PLURAL = "sandboxclaims";

export interface ClaimCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

/** A SandboxClaim as far as the backend reads it. */
export interface ClaimObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name?: string;
    generateName?: string;
    namespace?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
  };
  spec?: { warmPoolRef?: { name: string } };
  status?: {
    conditions?: ClaimCondition[];
    sandbox?: { name?: string; podIPs?: string[] };
  };
}

/** A running watch; `stop()` ends it. */
export interface ClaimWatch {
  stop(): void;
}

export interface KubeClaims {
  create(namespace: string, claim: ClaimObject): Promise<ClaimObject>;
  get(namespace: string, name: string): Promise<ClaimObject>;
  /**
   * Every later version of one claim (from `resourceVersion` on), until `stop()`; `onEnd` when
   * the server ends the watch (they do, after minutes) or it fails.
   */
  watch(
    namespace: string,
    name: string,
    resourceVersion: string | undefined,
    onChange: (claim: ClaimObject) => void,
    onEnd: (err?: Error) => void,
  ): Promise<ClaimWatch>;
  delete(namespace: string, name: string): Promise<void>;
}

/** What a refusal of the API server says, in one line (its Status message when it sent one). */
function apiError(what: string, err: unknown): Error {
  const e = err as { code?: number; body?: unknown; message?: string };
  let message = e.message ?? String(err);
  try {
    const body = (typeof e.body === "string" ? JSON.parse(e.body) : e.body) as {
      message?: string;
    };
    if (typeof body?.message === "string") message = body.message;
  } catch {
    // not a Status object: keep the error's own message
  }
  const status = e.code !== undefined ? ` (HTTP ${e.code})` : "";
  return e.code === 404
    ? new ErrInvalidConfig(`${what}: ${message}${status}`)
    : new ErrVMNotRunning(`${what}: ${message}${status}`);
}

/**
 * The claims API of the cluster `kubeconfig` names (a file), else of the default kubeconfig
 * (`KUBECONFIG`, `~/.kube/config`) or, inside a pod, of its service account.
 */
export async function clientNodeClaims(kubeconfig?: string): Promise<KubeClaims> {
  // An optional peer dependency: most users of the SDK never reach a cluster.
  const k8s = await import("@kubernetes/client-node").catch((err: NodeJS.ErrnoException) => {
    if (err.code !== "ERR_MODULE_NOT_FOUND") throw err;
    throw new ErrInvalidConfig(
      "remote.kubernetes needs the package @kubernetes/client-node (npm install @kubernetes/client-node@~1.4)",
    );
  });
  const config = new k8s.KubeConfig();
  if (kubeconfig !== undefined) config.loadFromFile(kubeconfig);
  else config.loadFromDefault();
  if (!config.getCurrentCluster())
    throw new ErrInvalidConfig("no Kubernetes cluster: no kubeconfig and not inside a pod");
  const api = config.makeApiClient(k8s.CustomObjectsApi);
  const at = (namespace: string) => ({
    group: CLAIM_GROUP,
    version: CLAIM_VERSION,
    namespace,
    plural: CLAIM_PLURAL,
  });
  return {
    async create(namespace, claim) {
      try {
        return (await api.createNamespacedCustomObject({
          ...at(namespace),
          body: claim,
        })) as ClaimObject;
      } catch (err) {
        throw apiError(`creating a SandboxClaim in ${namespace}`, err);
      }
    },
    async get(namespace, name) {
      try {
        return (await api.getNamespacedCustomObject({ ...at(namespace), name })) as ClaimObject;
      } catch (err) {
        throw apiError(`reading SandboxClaim ${namespace}/${name}`, err);
      }
    },
    async watch(namespace, name, resourceVersion, onChange, onEnd) {
      const path = `/apis/${CLAIM_GROUP}/${CLAIM_VERSION}/namespaces/${namespace}/${CLAIM_PLURAL}`;
      const controller = await new k8s.Watch(config).watch(
        path,
        {
          fieldSelector: `metadata.name=${name}`,
          ...(resourceVersion !== undefined ? { resourceVersion } : {}),
        },
        (phase: string, obj: ClaimObject) => {
          if (phase === "ADDED" || phase === "MODIFIED") onChange(obj);
        },
        (err: unknown) =>
          onEnd(err ? apiError(`watching SandboxClaim ${namespace}/${name}`, err) : undefined),
      );
      return { stop: () => controller.abort() };
    },
    async delete(namespace, name) {
      try {
        await api.deleteNamespacedCustomObject({ ...at(namespace), name });
      } catch (err) {
        // Already gone is what we wanted.
        if ((err as { code?: number }).code === 404) return;
        throw apiError(`deleting SandboxClaim ${namespace}/${name}`, err);
      }
    },
  };
}
