// The SDK's Kubernetes backend against a real `wheellock serve --single` (a VM) started from
// the plan deploy/kubernetes/sandbox-plan.yaml ships, behind stand-ins of the Kubernetes
// claim API and the agent-sandbox router (test/helpers/kube-standin.ts): claim, Ready,
// routed by X-Sandbox-ID, `configure` with a secret and env, exec, close deletes the claim and
// ends the pod's `serve`.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { Sandbox } from "../../src/index.js";
import { KubeStandIn, RouterStandIn, type PoolSandbox } from "../helpers/kube-standin.js";
import { startServe, type ServeProcess } from "../helpers/serve-process.js";
import { isolateDataDir, scratchDir } from "../helpers/vm.js";

isolateDataDir();
const scratch = scratchDir();

/** The plan every pod of the warm pool runs (the ConfigMap's plan.json). */
function shippedPlan(): string {
  const cm = parse(
    readFileSync(new URL("../../deploy/kubernetes/sandbox-plan.yaml", import.meta.url), "utf8"),
  ) as { data: { "plan.json": string } };
  return cm.data["plan.json"];
}

describe("Kubernetes backend against serve --single", { timeout: 600_000 }, () => {
  const api = new KubeStandIn();
  const pool: PoolSandbox[] = [];
  const router = new RouterStandIn(() => pool);
  let pod: ServeProcess | undefined;

  before(async () => {
    pod = await startServe(join(scratch, "pod"), ["--single"], shippedPlan());
    pool.push({ name: "wheellock-x7k2p", url: pod.url });
    api.free.push(...pool);
    await api.start();
    await router.start();
    api.writeKubeconfig(join(scratch, "kubeconfig"));
  });
  after(async () => {
    await pod?.stop("SIGKILL");
    await router.close();
    await api.close();
  });

  test("claim, route, configure, exec, close", async () => {
    const serve = pod as ServeProcess;
    const exited = new Promise<number | null>((resolve) => serve.child.once("exit", resolve));
    const sb = await Sandbox.create({
      env: { GREETING: "hello from the claim" },
      secrets: { API_KEY: { value: "sk-real-value", hosts: ["api.example.com"] } },
      remote: {
        kubernetes: {
          warmPool: "wheellock",
          router: router.url,
          token: serve.token,
          kubeconfig: join(scratch, "kubeconfig"),
        },
      },
    });
    assert.equal(sb.id, serve.sandbox);
    const r = await sb.exec(["sh", "-c", 'printf "%s|%s" "$GREETING" "$API_KEY"']);
    const [greeting, key] = r.stdout.split("|");
    assert.equal(greeting, "hello from the claim");
    // The guest sees a placeholder; the real value stays on the pod's host side.
    assert.ok(key && key.length > 0 && !key.includes("sk-real-value"), `API_KEY=${key}`);
    assert.ok(router.seen.every((h) => h.id === "wheellock-x7k2p" && h.port === "7777"));

    await sb.close();
    assert.deepEqual(api.deleted, [sb.claim.name]);
    // The pod's life is the sandbox's: serve --single exits once it stopped.
    assert.equal(await exited, 0);
  });
});
