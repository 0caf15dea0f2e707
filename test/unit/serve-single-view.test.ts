// `serve --single` lists its in-process sandbox with the allowlist as it is now: entries added
// (`allow-list add`) and hosts approved after the start show, as a supervised sandbox's record
// shows them, not the plan it started from.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Sandbox, type SandboxEvent } from "../../src/index.js";
import { SingleHost, type InProcessSandbox } from "../../src/serve/single-host.js";
import { FakeSandbox } from "../helpers/fake-sandbox.js";
import { startTestNode } from "../helpers/test-node.js";
import { newSandboxId } from "../../src/util/index.js";

const dataDir = mkdtempSync(join(tmpdir(), "wheellock-serve-single-view-"));
process.env.WHEELLOCK_DATA_DIR = dataDir;
after(() => rmSync(dataDir, { recursive: true, force: true }));

/** A fake that reports its allowlist changes as a VmSandbox does. */
class InProcessFake extends FakeSandbox {
  readonly accel = "tcg" as InProcessSandbox["accel"];
  readonly running = true;
  readonly config = {
    image: "fake",
    vcpuCount: 1,
    cpus: 1,
    memoryMb: 256,
    diskSizeMb: 1024,
    timeoutSeconds: 0,
    hostname: "fake",
    privileged: false,
    env: {},
    networkIntercept: true,
    allowedHosts: ["planned.example"],
    secrets: [],
  } as unknown as InProcessSandbox["config"];
  private listener: ((hosts: string[], approved: string[]) => void) | undefined;
  onAllowlistChange(listener: (hosts: string[], approved: string[]) => void): void {
    this.listener = listener;
  }
  private stop: () => void = () => undefined;
  /** Events until closed (a VmSandbox's stream ends when it stops). */
  override events(): AsyncIterableIterator<SandboxEvent> {
    const stopped = new Promise<void>((resolve) => (this.stop = resolve));
    const done: AsyncIterableIterator<SandboxEvent> = {
      next: async () => {
        await stopped;
        return { done: true, value: undefined };
      },
      [Symbol.asyncIterator]: () => done,
    };
    return done;
  }
  override async close(): Promise<void> {
    this.stop();
    await super.close();
  }
  override async allowHosts(...hosts: string[]): Promise<string[]> {
    const added = await super.allowHosts(...hosts);
    this.listener?.(this.allowlist.hosts, ["approved.example"]);
    return added;
  }
}

test("serve --single shows the live allowlist and approvals, not the plan's", async () => {
  const fake = new InProcessFake(newSandboxId());
  fake.allowlist = { ...fake.allowlist, hosts: ["planned.example"] };
  const host = new SingleHost(fake, new Date().toISOString());
  const n = await startTestNode(host, dataDir, { nodeId: "node-single-view" });
  try {
    const network = async () => {
      const res = await fetch(`${n.running.url}/v1/sandboxes/${fake.id}`, {
        headers: { authorization: `Bearer ${n.token}` },
      });
      assert.equal(res.status, 200);
      const view = (await res.json()) as {
        config: { network: { allowedHosts: string[]; approvedHosts?: string[] } };
      };
      return view.config.network;
    };
    assert.deepEqual((await network()).allowedHosts, ["planned.example"]);
    const sb = Sandbox.connect(fake.id, { remote: n.remote });
    await sb.allowHosts("added.example");
    const now = await network();
    assert.deepEqual(now.allowedHosts, ["planned.example", "added.example"]);
    assert.deepEqual(now.approvedHosts, ["approved.example"]);
  } finally {
    await n.running.close();
    await fake.close();
  }
});

test("serve --single frees an operation's slot when it ends (the client sends no OP_END)", async () => {
  const fake = new InProcessFake(newSandboxId());
  const host = new SingleHost(fake, new Date().toISOString());
  // One operation at a time: a slot still held after an exec refuses the next client.
  const n = await startTestNode(host, dataDir, { nodeId: "node-single-slots", maxOperations: 1 });
  try {
    for (const word of ["one", "two", "three"]) {
      const sb = Sandbox.connect(fake.id, { remote: n.remote });
      assert.equal((await sb.exec(["echo", word])).stdout, `${word}\n`);
    }
  } finally {
    await n.running.close();
    await fake.close();
  }
});
