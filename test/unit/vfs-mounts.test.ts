import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile, readFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FuseMounts } from "../../src/sandbox/fuse-mounts.js";
import { ErrInvalidConfig } from "../../src/errors.js";
import { encodeRequest } from "../../src/vfs/index.js";
import { Opcode } from "../../src/vfs/fuse-constants.js";

const GIB = 1 << 30;

async function withRunDir(body: (runDir: string, host: string) => Promise<void>): Promise<void> {
  const base = await mkdtemp(join(tmpdir(), "wheellock-mounts-"));
  try {
    await body(base, base);
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

test("mounts: bad specs are ErrInvalidConfig naming the guest path", async () => {
  await withRunDir(async (runDir, host) => {
    await writeFile(join(host, "file"), "");
    const cases: [Record<string, unknown>, RegExp][] = [
      [
        { "/w": { type: "host_fs", hostPath: join(host, "missing") } },
        /mounts\["\/w"\]: host path does not exist/,
      ],
      [{ "/w": { type: "host_fs", hostPath: "/dev/null" } }, /not a directory or regular file/],
      [{ "/w": { type: "nfs" } }, /type must be one of/],
      [{ "/w": { type: "provider" } }, /needs a provider/],
      [{ relative: { type: "memory" } }, /invalid guest mount path/],
      [{ "/w": { type: "host_fs", hostPath: host, owner: { uid: -1, gid: 0 } } }, /owner must be/],
    ];
    for (const [mounts, message] of cases) {
      await assert.rejects(
        FuseMounts.open(runDir, mounts as never, () => undefined, {}, GIB),
        (err: unknown) => err instanceof ErrInvalidConfig && message.test(err.message),
      );
    }
    // A regular file is a single-file mount (tests/unit/vfs-single-file.test.ts).
    const single = await FuseMounts.open(
      runDir,
      { "/w/file": { type: "host_fs", hostPath: join(host, "file") } },
      () => undefined,
      {},
      GIB,
    );
    await single.close();
  });
});

test("mounts: one FUSE server on fuse.sock serves every guest path through the router", async () => {
  await withRunDir(async (runDir, host) => {
    await writeFile(join(host, "hello"), "from host");
    const mounts = await FuseMounts.open(
      runDir,
      {
        "/workspace": { type: "host_fs", hostPath: host, readonly: true },
        "/tmp/m": { type: "memory" },
      },
      () => undefined,
      {},
      GIB,
    );
    try {
      assert.deepEqual(mounts.kernelArgs, ["wheellock.fuse=/workspace:/tmp/m"]);
      assert.equal(mounts.rawPort.name, "wheellock.fuse");
      const socket = connect(mounts.socketPath);
      const replies: Buffer[] = [];
      socket.on("data", (d: Buffer) => replies.push(d));
      const init = Buffer.alloc(64);
      init.writeUInt32LE(7, 0);
      init.writeUInt32LE(37, 4);
      const h = { uid: 0, gid: 0, pid: 1 };
      socket.write(encodeRequest({ ...h, opcode: Opcode.INIT, unique: 1n, nodeid: 0n }, init));
      socket.write(
        encodeRequest(
          { ...h, opcode: Opcode.LOOKUP, unique: 2n, nodeid: 1n },
          Buffer.from("workspace\0"),
        ),
      );
      for (let i = 0; i < 200 && Buffer.concat(replies).length < 80 + 144; i++) {
        await new Promise((r) => setTimeout(r, 5));
      }
      const all = Buffer.concat(replies);
      assert.equal(all.readInt32LE(4), 0, "INIT answered");
      const second = all.subarray(all.readUInt32LE(0));
      assert.equal(second.readBigUInt64LE(8), 2n);
      assert.equal(second.readInt32LE(4), 0, "the guest path is a directory of the one filesystem");
      socket.destroy();
      assert.equal(await readFile(join(host, "hello"), "utf8"), "from host");
    } finally {
      await mounts.close();
    }
  });
});
