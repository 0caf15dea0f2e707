// One registry and one VM for the SDK checks; one CLI run for ENTRYPOINT/CMD composition.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { Readable } from "node:stream";
import { ImageStore, importImage } from "../../src/image/index.js";
import { Sandbox } from "../../src/index.js";
import { buildImage, busyboxEntries, dockerSaveTar, layerTar } from "../helpers/oci-build.js";
import { pushImage, startRegistry, type TestRegistry } from "../helpers/registry.js";
import { isolateDataDir } from "../helpers/vm.js";

isolateDataDir();
let reg: TestRegistry;
let ref = "";
let sb: Sandbox | undefined;
const IMPORTED = `wl-vmtest-import:${process.pid}`;

before(async () => {
  reg = await startRegistry();
  const img = buildImage(
    [
      await layerTar([
        ...busyboxEntries(),
        { name: "usr/bin/suid", content: "s", mode: 0o4755 },
        { name: "data/old", content: "old" },
        { name: "data/owned", content: "mine", uid: 1000, gid: 1000, mode: 0o640 },
        { name: "opq/old", content: "lower" },
      ]),
      await layerTar([
        { name: "data/.wh.old", content: "" },
        { name: "data/link", type: "symlink", linkname: "owned" },
        { name: "data/hard", type: "link", linkname: "data/owned" },
        { name: "opq/.wh..wh..opq", content: "" },
        { name: "opq/new", content: "upper" },
      ]),
    ],
    {
      Env: ["FROM_IMAGE=1", "OVERRIDE=image"],
      Entrypoint: ["/bin/echo", "ep"],
      Cmd: ["default-cmd"],
      User: "app",
      WorkingDir: "/data",
    },
  );
  await pushImage(reg.host, "vm/busybox", "v1", img);
  ref = `${reg.host}/vm/busybox:v1`;
  sb = await Sandbox.create({ image: ref, env: { OVERRIDE: "user" } });
});

after(async () => {
  await sb?.close();
  await new ImageStore().remove(ref).catch(() => undefined);
  await reg?.stop();
});

describe("an OCI image in a VM", () => {
  test("USER, WORKDIR and ENV apply to every exec; -u/-w override", async () => {
    const s = sb as Sandbox;
    const r = await s.exec(["sh", "-c", "id -u; pwd; echo $FROM_IMAGE $OVERRIDE"]);
    assert.equal(r.stdout, "1000\n/data\n1 user\n");
    const r2 = await s.exec(["sh", "-c", "id -u; pwd"], { user: "0", cwd: "/" });
    assert.equal(r2.stdout, "0\n/\n");
  });

  test("ownership, modes, whiteouts, opaque dirs, symlinks and hard links as the layers say", async () => {
    const s = sb as Sandbox;
    const r = await s.exec(
      [
        "sh",
        "-c",
        "stat -c '%n %u:%g %a %h' /data/owned /usr/bin/suid; ls /data; readlink /data/link; cat /data/hard; echo; ls /opq",
      ],
      { user: "0" },
    );
    assert.equal(
      r.stdout,
      "/data/owned 1000:1000 640 2\n/usr/bin/suid 0:0 4755 1\nhard\nlink\nowned\nowned\nmine\nnew\n",
    );
  });

  test("CLI run: ENTRYPOINT + CMD, user args replace CMD, --entrypoint overrides, WHEELLOCK_IMAGE", async () => {
    const cli = (args: string[]) =>
      promisify(execFile)(
        process.execPath,
        ["--import", "tsx", "src/cli/main.ts", "run", "--image", ref, ...args],
        {
          encoding: "utf8",
        },
      );
    const out = await cli(["--", "sh", "-c", "true"]);
    assert.equal(out.stdout, "ep sh -c true\n");
    // --entrypoint "" clears ENTRYPOINT and CMD: the user's args are the whole command.
    const out2 = await cli(["--entrypoint", "", "--", "sh", "-c", "echo $((6*7)) $(id -u)"]);
    assert.equal(out2.stdout, "42 1000\n");
    // The image named only by WHEELLOCK_IMAGE, no command: its ENTRYPOINT + CMD run.
    const out3 = await promisify(execFile)(
      process.execPath,
      ["--import", "tsx", "src/cli/main.ts", "run"],
      { encoding: "utf8", env: { ...process.env, WHEELLOCK_IMAGE: ref } },
    );
    assert.equal(out3.stdout, "ep default-cmd\n");
  });

  test("an image imported from a docker save tarball boots with its config", async () => {
    const tar = await dockerSaveTar(
      [await layerTar([...busyboxEntries(), { name: "marker", content: "imported" }])],
      { Env: ["IMPORTED=yes"], WorkingDir: "/home/app" },
      "x:1",
    );
    const store = new ImageStore();
    await importImage(IMPORTED, { store, source: Readable.from([tar]) });
    try {
      await using imported = await Sandbox.create({ image: IMPORTED });
      const r = await imported.exec(["sh", "-c", 'cat /marker; echo " $IMPORTED $(pwd)"']);
      assert.equal(r.stdout, "imported yes /home/app\n");
    } finally {
      await store.remove(`docker.io/library/${IMPORTED}`);
    }
  });

  test("an unknown image: image not found, exit 1", async () => {
    await assert.rejects(
      promisify(execFile)(process.execPath, [
        "--import",
        "tsx",
        "src/cli/main.ts",
        "run",
        "--image",
        `${reg.host}/vm/nope:1`,
        "--",
        "true",
      ]),
      (err: { code?: number; stderr?: string }) =>
        err.code === 1 && err.stderr === `wheellock: image not found: ${reg.host}/vm/nope:1\n`,
    );
  });
});
