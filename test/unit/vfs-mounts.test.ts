import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile, readFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FuseMounts } from "../../src/sandbox/fuse-mounts.js";
import { ErrInvalidConfig } from "../../src/errors.js";
import { planSandbox } from "../../src/config/index.js";
import { encodeRequest, type FuseServer } from "../../src/vfs/index.js";
import { FakeKernel } from "./vfs-fake-kernel.js";
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
      [{ "/w": { type: "memory", quota: { sizeBytes: 100 } } }, /quota.sizeBytes must be/],
      [{ "/w": { type: "memory", quota: { inodes: 1.5 } } }, /quota.inodes must be/],
      [{ "/w": { type: "memory", quota: { bytes: 1 } } }, /unknown field "bytes"/],
      [
        { "/w": { type: "host_fs", hostPath: host, readonly: true, quota: {} } },
        /a quota applies to writable overlay, memory and host_fs mounts only/,
      ],
    ];
    // Checked once, when the plan is made; the mounts are then opened from the plan.
    for (const [mounts, message] of cases) {
      assert.throws(
        () => planSandbox({ mounts: mounts as never }),
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
      assert.deepEqual(mounts.guestPaths, ["/workspace", "/tmp/m"]);
      assert.equal(mounts.rawPort.name, "wheellock.fuse");
      const socket = connect(mounts.socketPath);
      await new Promise((r) => socket.once("connect", r));
      // The server side of the connection: accepted by now or very soon.
      for (let i = 0; i < 200; i++) {
        try {
          mounts.attach();
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 5));
        }
      }
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

test("mounts: each writable mount's df shows its budget (default: the disk size for overlays)", async () => {
  await withRunDir(async (runDir, host) => {
    const mounts = await FuseMounts.open(
      runDir,
      {
        "/ov": { type: "overlay", hostPath: host },
        "/ov2": { type: "overlay", hostPath: host, quota: { sizeBytes: 8 << 20, inodes: 99 } },
        "/mem": { type: "memory" },
        "/rw": { type: "host_fs", hostPath: host },
      },
      () => undefined,
      {},
      64 << 20,
    );
    try {
      // What the guest kernel gets for statfs(2) on each mount point.
      const k = new FakeKernel(Reflect.get(mounts, "server") as FuseServer);
      await k.init();
      const df = async (path: string) => {
        const s = await k.statfs((await k.lookup(1n, path.slice(1))).nodeid);
        return [s.blocks * s.blockBytes, s.files];
      };
      assert.deepEqual(await df("/ov"), [64 << 20, 4096]);
      assert.deepEqual(await df("/ov2"), [8 << 20, 99]);
      assert.deepEqual(await df("/mem"), [256 << 20, 16384]);
      // A read-write host directory is the user's own: its df is the host's, unless a quota is set.
      assert.notDeepEqual(await df("/rw"), [64 << 20, 4096]);
    } finally {
      await mounts.close();
    }
  });
});

test("mounts: the latest QEMU connection is served (a failed restore's is dropped)", async () => {
  await withRunDir(async (runDir) => {
    const mounts = await FuseMounts.open(runDir, {}, () => undefined, {}, GIB);
    try {
      const first = connect(mounts.socketPath);
      await new Promise((r) => first.once("connect", r));
      const closed = new Promise((r) => first.once("close", r));
      const second = connect(mounts.socketPath);
      await new Promise((r) => second.once("connect", r));
      await closed; // the earlier connection is gone
      for (let i = 0; i < 200; i++) {
        try {
          mounts.attach();
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 5));
        }
      }
      assert.equal(existsSync(mounts.socketPath), false, "nothing else may connect now");
      second.destroy();
    } finally {
      await mounts.close();
    }
  });
});
