// The SDK's Kubernetes backend with no cluster and no VM: `@kubernetes/client-node` against a
// stand-in of the SandboxClaim API paths (claims checked against the agent-sandbox CRD), a
// stand-in router that checks the routing headers, and the real `serve` node with a fake
// sandbox behind it (test/vm/kubernetes.test.ts puts a real `serve --single` there).
import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ErrAuth,
  ErrInvalidConfig,
  ErrTimeout,
  Sandbox,
  type KubernetesOptions,
  type KubernetesSandbox,
} from "../../src/index.js";
import { startNode, type RunningNode } from "../../src/serve/index.js";
import { FakeHost } from "../helpers/fake-host.js";
import { KubeStandIn, RouterStandIn, type PoolSandbox } from "../helpers/kube-standin.js";

const dir = mkdtempSync(join(tmpdir(), "wheellock-k8s-unit-"));
process.env.WHEELLOCK_DATA_DIR = dir;
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

describe("Sandbox.create({ remote: { kubernetes } })", { timeout: 180_000 }, () => {
  const api = new KubeStandIn();
  const pool: PoolSandbox[] = [];
  const router = new RouterStandIn(() => pool);
  let host: FakeHost;
  let node: RunningNode;
  let token: string;
  let kube: KubernetesOptions;

  before(async () => {
    host = new FakeHost(dir, 8);
    node = await startNode(
      {
        listen: { host: "127.0.0.1", port: 0 },
        version: "test",
        nodeId: "pod-a",
        tokenFile: join(dir, "pod.token"),
        maxSandboxes: 1,
      },
      host,
    );
    token = readFileSync(node.tokenPath, "utf8").trim();
    await api.start();
    await router.start();
    api.writeKubeconfig(join(dir, "kubeconfig"));
    kube = {
      warmPool: "wheellock",
      router: router.url,
      token,
      kubeconfig: join(dir, "kubeconfig"),
    };
  });
  after(async () => {
    await node.close();
    await host.close();
    await router.close();
    await api.close();
  });
  /** One warm sandbox (a pod of the pool) before each case. */
  beforeEach(async () => {
    await host.close();
    await host.create();
    pool.splice(0, pool.length, { name: "wheellock-pod0", url: node.url });
    api.free.splice(0, api.free.length, ...pool);
    api.requests.length = 0;
    api.claims.clear();
    api.deleted.length = 0;
    api.readyDelayMs = 0;
    router.seen.length = 0;
  });

  /** `create` with Ready held back until `watches` watch requests were made. */
  async function createAfterWatches(
    watches: number,
    options: KubernetesOptions = kube,
  ): Promise<KubernetesSandbox> {
    api.readyDelayMs = -1;
    const creating = Sandbox.create({
      env: { GREETING: "hello" },
      allowedHosts: ["api.example.com"],
      secrets: { API_KEY: { value: "sk-real", hosts: ["api.example.com"] } },
      remote: { kubernetes: options },
    });
    creating.catch(() => undefined);
    const deadline = Date.now() + 30_000;
    while (api.watches() < watches && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 20));
    api.bindPending();
    return creating;
  }

  test("claims from the pool, routes by X-Sandbox-ID, configures, deletes the claim on close", async () => {
    // Ready arrives on the watch, not on the first read.
    const sb = await createAfterWatches(1);
    const claim = sb.claim.name;
    assert.match(claim, /^wheellock-[0-9a-f]{6}$/);
    assert.equal(sb.claim.namespace, "wheellock");
    const [hosted] = host.list();
    const fake = host.sandbox(hosted?.id as string);
    assert.equal(sb.id, `${hosted?.id}@pod-a`);
    // configure carried what the claim personalises, the secret's value included (host side).
    assert.deepEqual(fake.configured, [
      {
        env: { GREETING: "hello" },
        allowedHosts: ["api.example.com"],
        secrets: { API_KEY: { value: "sk-real", hosts: ["api.example.com"] } },
      },
    ]);
    assert.equal(
      (await sb.exec(["echo", "through", "the", "router"])).stdout,
      "through the router\n",
    );
    // The REST call, then the data plane's WebSocket: configure and exec share it (kept).
    assert.ok(router.seen.length >= 2, "the REST call and the data plane went through the router");
    for (const h of router.seen)
      assert.deepEqual(h, { id: "wheellock-pod0", namespace: "wheellock", port: "7777" });
    assert.ok(
      api.requests.some((r) => r.includes("watch=true")),
      api.requests.join("\n"),
    );
    assert.equal(api.claims.has(claim), true);

    await sb.close();
    assert.equal(fake.closed, true);
    assert.deepEqual(api.deleted, [claim]);
    assert.equal(api.claims.size, 0);
    await sb.close(); // twice is fine
    // Only the claim paths of the API were used.
    for (const r of api.requests)
      assert.match(
        r,
        /^(POST|GET|DELETE) \/apis\/extensions\.agents\.x-k8s\.io\/v1beta1\/namespaces\/wheellock\/sandboxclaims/,
      );
  });

  test("the claim the API server received is a valid SandboxClaim with a shutdown time", async () => {
    api.readyDelayMs = 0;
    const sb = await Sandbox.create({
      remote: { kubernetes: { ...kube, maxLifetimeSeconds: 600 } },
    });
    const obj = api.claims.get(sb.claim.name)?.object as unknown as {
      spec: {
        warmPoolRef: { name: string };
        lifecycle: { shutdownTime: string; shutdownPolicy: string };
      };
    };
    assert.equal(obj.spec.warmPoolRef.name, "wheellock");
    assert.equal(obj.spec.lifecycle.shutdownPolicy, "Delete");
    const left = Date.parse(obj.spec.lifecycle.shutdownTime) - Date.now();
    assert.ok(left > 500_000 && left <= 600_000, `shutdownTime in ${left} ms`);
    await sb.close();
  });

  test("a watch the server ends is started again until the claim is Ready", async () => {
    api.watchLifetimeMs = 100;
    try {
      const sb = await createAfterWatches(3);
      assert.ok(api.watches() >= 3);
      assert.equal(sb.claim.namespace, "wheellock");
      await sb.close();
    } finally {
      api.watchLifetimeMs = 60_000;
    }
  });

  test("options the template fixes are refused before anything is claimed", async () => {
    await assert.rejects(
      Sandbox.create({ image: "alpine", cpus: 2, remote: { kubernetes: kube } }),
      (err: Error) =>
        err instanceof ErrInvalidConfig && /image, cpus are set by the warm pool/.test(err.message),
    );
    await assert.rejects(
      Sandbox.create({
        secrets: { BAD: { value: "x", hosts: [] } },
        remote: { kubernetes: kube },
      }),
      ErrInvalidConfig,
    );
    await assert.rejects(
      Sandbox.create({ remote: { kubernetes: { ...kube, router: "http://u:p@router:8080" } } }),
      ErrInvalidConfig,
    );
    // Past a timer's range (~24.8 days) Node fires at once: an instant ErrTimeout after a
    // claim was made. Past a Date's range the shutdown time is a RangeError after the check.
    for (const bad of [{ readyTimeoutSeconds: 3e6 }, { maxLifetimeSeconds: 1e15 }])
      await assert.rejects(
        Sandbox.create({ remote: { kubernetes: { ...kube, ...bad } } }),
        (err: Error) => err instanceof ErrInvalidConfig && /must be a number/.test(err.message),
      );
    assert.deepEqual(api.requests, []);
  });

  test("a claim that is not Ready in time fails with ErrTimeout and is deleted", async () => {
    api.free.length = 0; // the pool is exhausted: nothing binds the claim
    await assert.rejects(
      Sandbox.create({ remote: { kubernetes: { ...kube, readyTimeoutSeconds: 0.5 } } }),
      (err: Error) => err instanceof ErrTimeout && /not Ready in 500 ms/.test(err.message),
    );
    assert.equal(api.claims.size, 0);
    assert.equal(api.deleted.length > 0, true);
  });

  test("a wrong serve token is refused by the pod, and the claim is deleted", async () => {
    const before = api.deleted.length;
    await assert.rejects(
      Sandbox.create({ remote: { kubernetes: { ...kube, token: "not-the-pods-token-at-all" } } }),
      ErrAuth,
    );
    assert.equal(api.claims.size, 0);
    assert.equal(api.deleted.length, before + 1);
  });

  test("the Kubernetes API's refusal is one line (a bad kubeconfig token)", async () => {
    const bad = join(dir, "bad-kubeconfig");
    api.writeKubeconfig(bad, "wrong-token");
    await assert.rejects(
      Sandbox.create({ remote: { kubernetes: { ...kube, kubeconfig: bad } } }),
      /creating a SandboxClaim in wheellock: .*401/,
    );
    assert.equal(api.claims.size, 0);
  });
});
