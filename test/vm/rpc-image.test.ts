// `wheellock rpc` with an image pulled from a local registry (issue 12; reference/
// matchlock-rpc.md §8, §14.1): the pull on create, an entrypoint that fails inside the
// reference's early-failure window fails create, the image's WORKDIR, and stdin EOF while a
// command runs: status 0 within 2 s and no QEMU left.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { buildImage, busyboxEntries, layerTar } from "../helpers/oci-build.js";
import { pushImage, startRegistry, type TestRegistry } from "../helpers/registry.js";
import { isolateDataDir } from "../helpers/vm.js";
import type { Message } from "../unit/rpc-client.js";
import { EXIT_BOUND_MS, endInput, qemuOf, startRpcProcess } from "../unit/rpc-process.js";

isolateDataDir();
const text = (m: Message, key = "stdout") =>
  Buffer.from((m.result?.[key] as string) ?? "", "base64").toString();

describe("an image from a local registry", () => {
  let reg: TestRegistry;
  let ref = "";

  before(async () => {
    reg = await startRegistry();
    const extra = ["sleep", "mkdir", "true", "false"].map((a) => ({
      name: `bin/${a}`,
      type: "symlink" as const,
      linkname: "busybox",
    }));
    const img = buildImage([await layerTar([...busyboxEntries(), ...extra])], {
      Entrypoint: ["/bin/sh", "-c"],
      Cmd: ["echo failing; exit 3"],
      WorkingDir: "/home/app",
    });
    await pushImage(reg.host, "rpc/busybox", "v1", img);
    ref = `${reg.host}/rpc/busybox:v1`;
  });

  after(() => reg?.stop());

  test("pulled on create; an entrypoint that fails at once fails create; EOF mid-command exits 0 with no QEMU", async () => {
    const rpc = startRpcProcess();
    const c = rpc.client;
    const failed = await c.call(
      "create",
      { image: ref, launch_entrypoint: true, resources: { memory_mb: 256 } },
      600_000,
    );
    assert.deepEqual(failed.error, {
      code: -32000,
      message: "start image entrypoint: exit code 3",
    });
    const ok = await c.call("create", { image: ref, resources: { memory_mb: 256 } }, 600_000);
    const id = ok.result?.id as string;
    assert.match(id, /^vm-/);
    // The image's WORKDIR applies.
    assert.equal(text(await c.call("exec", { command: "pwd" }, 60_000)), "/home/app\n");
    const running = c.request("exec_stream", { command: "echo started; sleep 600" });
    await c.waitFor(() => c.data(running, "exec_stream.stdout") === "started\n", 60_000);
    assert.equal(qemuOf(id).length, 1);
    const exit = await endInput(rpc);
    assert.equal(exit.code, 0);
    assert.ok(exit.afterEofMs < EXIT_BOUND_MS, `exited ${exit.afterEofMs} ms after EOF`);
    assert.deepEqual(qemuOf(id), []);
    assert.equal((await c.response(running, 1000)).error?.code, -32003);
  });
});
