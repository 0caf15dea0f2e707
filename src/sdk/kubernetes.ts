/**
 * The SDK's Kubernetes backend: `Sandbox.create({ remote: { kubernetes: { warmPool } } })`
 * claims a sandbox from an agent-sandbox `SandboxWarmPool` (deploy/kubernetes/), waits until
 * the claim is Ready, reaches the pod's `wheellock serve --single` through the sandbox router
 * (header `X-Sandbox-ID`) or at the pod's IP, personalises it with `configure` (secrets,
 * allowlist, env) and returns the same `SandboxApi` as every other kind of sandbox. `close()`
 * stops the sandbox and deletes the claim; the pool starts a replacement.
 */
import { planConfigure, type ConfigureOptions, type SandboxOptions } from "../config/index.js";
import { ErrInvalidConfig, ErrTimeout, ErrVMNotRunning } from "../errors.js";
import type { SandboxView } from "../serve/index.js";
import {
  CLAIM_GROUP,
  CLAIM_VERSION,
  clientNodeClaims,
  type ClaimObject,
  type ClaimWatch,
  type KubeClaims,
} from "./kube-claims.js";
import { checkNodeUrl, nodeRequest, type NodeEndpoint } from "./node-client.js";
import { NodeSandbox } from "./remote.js";

export interface KubernetesOptions {
  /** The SandboxWarmPool to claim from (`wheellock` or `wheellock-tcg` in deploy/kubernetes). */
  warmPool: string;
  /** Namespace of the pool and its claims. Default `wheellock`. */
  namespace?: string;
  /**
   * The agent-sandbox router (`http://sandbox-router-svc.agent-sandbox-system:8080`, or a
   * `kubectl port-forward` of it on 127.0.0.1). Without it the pod is reached at its IP, which
   * works only from inside the cluster.
   */
  router?: string;
  /** `serve`'s port in the pod. Default 7777. */
  port?: number;
  /** The pods' serve token (the Secret `wheellock-serve-token`); else `WHEELLOCK_TOKEN`. */
  token?: string;
  /** PEM certificates to trust when the router or the pods speak https. */
  ca?: string;
  /** A kubeconfig file; default `KUBECONFIG`, `~/.kube/config`, or the pod's service account. */
  kubeconfig?: string;
  /** How long a claim may take to become Ready. Default 300 s. */
  readyTimeoutSeconds?: number;
  /**
   * The claim is deleted by the cluster after this long even if this process dies without
   * `close()` (its `lifecycle.shutdownTime`). Default 3600; 0 = never.
   */
  maxLifetimeSeconds?: number;
}

/** For tests: the Kubernetes API the backend talks to (default: `@kubernetes/client-node`). */
export interface KubernetesInternals {
  claims?: KubeClaims;
  env?: NodeJS.ProcessEnv;
}

const DEFAULT_NAMESPACE = "wheellock";
const DEFAULT_PORT = 7777;
const DEFAULT_READY_TIMEOUT_S = 300;
const DEFAULT_MAX_LIFETIME_S = 3600;
/** After Ready, the router (its DNS) may lag the pod by a moment: retry reaching it this long. */
const REACH_RETRY_MS = 15_000;

/** What a claim can personalise: the rest is fixed by the pool's template and plan. */
const PER_CLAIM = new Set(["secrets", "allowedHosts", "env"]);

/** A sandbox behind a SandboxClaim: `close()` also deletes the claim. */
export class KubernetesSandbox extends NodeSandbox {
  private released: Promise<void> | undefined;

  constructor(
    id: string,
    endpoint: NodeEndpoint,
    /** The claim's namespace and name (`kubectl get sandboxclaim`). */
    readonly claim: { namespace: string; name: string },
    private readonly deleteClaim: () => Promise<void>,
  ) {
    super(id, () => Promise.resolve(endpoint), undefined);
  }

  override async close(): Promise<void> {
    try {
      await super.close();
    } finally {
      this.released ??= this.deleteClaim();
      await this.released;
    }
  }
}

function checkOptions(options: SandboxOptions, k: KubernetesOptions): void {
  const fixed = Object.keys(options).filter((key) => !PER_CLAIM.has(key));
  if (fixed.length > 0)
    throw new ErrInvalidConfig(
      `remote.kubernetes: ${fixed.join(", ")} ${fixed.length > 1 ? "are" : "is"} set by the warm ` +
        "pool's template (its plan ConfigMap); a claim sets only secrets, allowedHosts and env",
    );
  if (typeof k.warmPool !== "string" || !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(k.warmPool))
    throw new ErrInvalidConfig("remote.kubernetes.warmPool must name a SandboxWarmPool");
  const ns = k.namespace ?? DEFAULT_NAMESPACE;
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(ns))
    throw new ErrInvalidConfig(`remote.kubernetes.namespace is not a namespace name: ${ns}`);
  const port = k.port ?? DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new ErrInvalidConfig(`remote.kubernetes.port must be 1..65535, got ${port}`);
  for (const [name, value] of [
    ["readyTimeoutSeconds", k.readyTimeoutSeconds],
    ["maxLifetimeSeconds", k.maxLifetimeSeconds],
  ] as const)
    if (value !== undefined && !(Number.isFinite(value) && value >= 0))
      throw new ErrInvalidConfig(`remote.kubernetes.${name} must be a number >= 0`);
  if (k.router !== undefined) checkNodeUrl(k.router);
}

function isReady(claim: ClaimObject): boolean {
  const ready = claim.status?.conditions?.find((c) => c.type === "Ready");
  return ready?.status === "True" && typeof claim.status?.sandbox?.name === "string";
}

/** Resolves with the claim once Ready (a watch, restarted when the server ends it). */
function waitReady(
  claims: KubeClaims,
  namespace: string,
  name: string,
  timeoutMs: number,
): Promise<ClaimObject> {
  return new Promise((resolve, reject) => {
    let last: ClaimObject | undefined;
    let watch: ClaimWatch | undefined;
    let done = false;
    const finish = (err: Error | undefined, claim?: ClaimObject): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      watch?.stop();
      if (err) reject(err);
      else resolve(claim as ClaimObject);
    };
    const timer = setTimeout(() => {
      const ready = last?.status?.conditions?.find((c) => c.type === "Ready");
      const why = ready
        ? ` (Ready=${ready.status}: ${ready.reason ?? ""} ${ready.message ?? ""})`
        : "";
      finish(
        new ErrTimeout(`SandboxClaim ${namespace}/${name} not Ready in ${timeoutMs} ms${why}`),
      );
    }, timeoutMs);
    const start = async (): Promise<void> => {
      try {
        last = await claims.get(namespace, name);
        if (isReady(last)) return finish(undefined, last);
        if (done) return;
        watch = await claims.watch(
          namespace,
          name,
          last.metadata.resourceVersion,
          (claim) => {
            last = claim;
            if (isReady(claim)) finish(undefined, claim);
          },
          // Servers end watches after a while, or on a too-old version: read again, watch on.
          (err) => {
            if (!done) setTimeout(() => void start(), err ? 1000 : 100);
          },
        );
        if (done) watch.stop();
      } catch (err) {
        finish(err as Error);
      }
    };
    void start();
  });
}

/** Where the claimed sandbox's `serve` is: the router with its headers, or the pod's IP. */
function endpointOf(claim: ClaimObject, k: KubernetesOptions, token: string): NodeEndpoint {
  const namespace = k.namespace ?? DEFAULT_NAMESPACE;
  const port = k.port ?? DEFAULT_PORT;
  const sandbox = claim.status?.sandbox;
  const ca = k.ca !== undefined ? { ca: k.ca } : {};
  if (k.router !== undefined)
    return {
      url: k.router,
      token,
      ...ca,
      headers: {
        "X-Sandbox-ID": sandbox?.name as string,
        "X-Sandbox-Namespace": namespace,
        "X-Sandbox-Port": String(port),
      },
    };
  const ip = sandbox?.podIPs?.[0];
  if (ip === undefined)
    throw new ErrVMNotRunning(
      `SandboxClaim ${namespace}/${claim.metadata.name} has no pod IP: give remote.kubernetes.router`,
    );
  const host = ip.includes(":") ? `[${ip}]` : ip;
  return { url: `${k.ca !== undefined ? "https" : "http"}://${host}:${port}`, token, ...ca };
}

/** The one sandbox the pod's `serve --single` serves. */
async function servedSandbox(endpoint: NodeEndpoint): Promise<SandboxView> {
  const deadline = Date.now() + REACH_RETRY_MS;
  for (;;) {
    try {
      const r = await nodeRequest<{ sandboxes: SandboxView[] }>(endpoint, "GET", "/v1/sandboxes");
      const running = r.json.sandboxes.filter((s) => s.status === "running");
      if (r.json.sandboxes.length !== 1 || running.length !== 1)
        throw new ErrVMNotRunning(
          `the claimed pod serves ${r.json.sandboxes.length} sandboxes (${running.length} ` +
            "running); its template must run `wheellock serve --single`",
        );
      return running[0] as SandboxView;
    } catch (err) {
      // Unreachable (the router's view lags the pod): try again; anything else is an answer.
      const unreachable = err instanceof ErrVMNotRunning && /not reachable/.test(err.message);
      if (!unreachable || Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

/** Claims a sandbox from the warm pool; everything a failure leaves is deleted again. */
export async function createKubernetes(
  options: SandboxOptions,
  k: KubernetesOptions,
  internal: KubernetesInternals = {},
): Promise<KubernetesSandbox> {
  checkOptions(options, k);
  const configure = options as ConfigureOptions;
  // Refused here, before a claim takes a pod from the pool.
  if (Object.keys(configure).length > 0) planConfigure(configure);
  const env = internal.env ?? process.env;
  const token = k.token ?? env.WHEELLOCK_TOKEN;
  if (!token)
    throw new ErrInvalidConfig("remote.kubernetes.token (or WHEELLOCK_TOKEN) is required");
  const namespace = k.namespace ?? DEFAULT_NAMESPACE;
  const claims = internal.claims ?? (await clientNodeClaims(k.kubeconfig));
  const lifetimeS = k.maxLifetimeSeconds ?? DEFAULT_MAX_LIFETIME_S;
  const created = await claims.create(namespace, {
    apiVersion: `${CLAIM_GROUP}/${CLAIM_VERSION}`,
    kind: "SandboxClaim",
    metadata: {
      generateName: `${k.warmPool}-`,
      namespace,
      labels: { "app.kubernetes.io/managed-by": "wheellock-sdk" },
    },
    spec: {
      warmPoolRef: { name: k.warmPool },
      ...(lifetimeS > 0
        ? {
            lifecycle: {
              shutdownTime: new Date(Date.now() + lifetimeS * 1000).toISOString(),
              shutdownPolicy: "Delete",
            },
          }
        : {}),
    },
  } as ClaimObject);
  const name = created.metadata.name;
  if (!name) throw new ErrVMNotRunning("the API server created a SandboxClaim without a name");
  const deleteClaim = (): Promise<void> => claims.delete(namespace, name);
  try {
    const timeoutMs = (k.readyTimeoutSeconds ?? DEFAULT_READY_TIMEOUT_S) * 1000;
    const ready = await waitReady(claims, namespace, name, timeoutMs);
    const endpoint = endpointOf(ready, k, token);
    const served = await servedSandbox(endpoint);
    const sandbox = new KubernetesSandbox(served.id, endpoint, { namespace, name }, deleteClaim);
    if (Object.keys(configure).length > 0) {
      try {
        await sandbox.configure(configure);
      } catch (err) {
        // The sandbox may have taken part of it: nobody else may get it.
        await sandbox.close().catch(() => undefined);
        throw err;
      }
    }
    return sandbox;
  } catch (err) {
    await deleteClaim().catch(() => undefined);
    throw err;
  }
}
