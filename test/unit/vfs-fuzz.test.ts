/**
 * Random and mutated FUSE requests against the server over a host directory: the server must
 * answer every request with a well-formed reply for the same unique (or none for FORGET-like
 * opcodes), never throw, and never touch anything outside the root.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  FuseServer,
  HostDirProvider,
  MemoryProvider,
  ReadOnlyProvider,
  RouterProvider,
  decodeInHeader,
  openHostOverlay,
  quotaOfSize,
  type VfsProvider,
} from "../../src/vfs/index.js";
import { Opcode } from "../../src/vfs/fuse-constants.js";
import { FakeKernel } from "./vfs-fake-kernel.js";
import { mulberry32 as rng } from "../helpers/seeded-random.js";

const NAMES = ["a", "b", "..", ".", "a/b", "door", "x".repeat(300), "f", "d", ""];
const NO_REPLY = new Set([Opcode.FORGET, Opcode.BATCH_FORGET, Opcode.INTERRUPT]);

type Make = (root: string, base: string) => Promise<VfsProvider>;

const PROVIDERS: [string, Make][] = [
  ["a host dir", (root) => HostDirProvider.open(root)],
  [
    "an overlay over a host dir",
    async (root, base) =>
      (await openHostOverlay({ hostPath: root, upperParentDir: base, quota: quotaOfSize(1 << 30) }))
        .provider,
  ],
  [
    "a router of memory, read-only and host dir",
    async (root) =>
      new RouterProvider({
        "/": new MemoryProvider(),
        "/ro": new ReadOnlyProvider(new MemoryProvider()),
        "/d/host": await HostDirProvider.open(root),
      }),
  ],
];

for (const [label, make] of PROVIDERS) {
  test(`fuzz: 4000 random and mutated requests over ${label}`, async () => {
    await fuzz(make);
  });
}

async function fuzz(make: Make): Promise<void> {
  const base = await mkdtemp(join(tmpdir(), "wheellock-vfs-fuzz-"));
  const outside = join(base, "outside");
  const root = join(base, "root");
  await mkdir(outside);
  await mkdir(root);
  await writeFile(join(outside, "secret"), "SECRET");
  await symlink(outside, join(root, "door"));
  const provider = await make(root, base);
  const server = new FuseServer({ provider });
  const kernel = new FakeKernel(server);
  await kernel.init();
  const random = rng(12345);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  try {
    // A few real nodes and handles so mutated requests hit live state.
    const d = await kernel.mkdir(1n, "d");
    const f = await kernel.create(d, "f");
    const nodeids = [0n, 1n, d, f.nodeid, 99n, 2n ** 64n - 1n];
    const valid = [
      () => kernel.request(Opcode.LOOKUP, pick(nodeids), Buffer.from(`${pick(NAMES)}\0`)),
      () =>
        kernel.writeRequest(
          f.fh,
          Math.floor(random() * 4096),
          Buffer.alloc(Math.floor(random() * 512), 1),
        ),
      () =>
        kernel.request(
          Opcode.MKDIR,
          pick(nodeids),
          Buffer.concat([Buffer.alloc(8), Buffer.from(`${pick(NAMES)}\0`)]),
        ),
      () =>
        kernel.request(
          Opcode.SYMLINK,
          pick(nodeids),
          Buffer.from(`${pick(NAMES)}\0../../outside/secret\0`),
        ),
    ];
    for (let i = 0; i < 4000; i++) {
      let bytes: Buffer;
      if (random() < 0.5) {
        bytes = pick(valid)();
        // Flip a few bytes after the length field (the framer owns the length).
        for (let flips = Math.floor(random() * 4); flips > 0; flips--) {
          const at = 4 + Math.floor(random() * (bytes.length - 4));
          bytes[at] = Math.floor(random() * 256);
        }
      } else {
        const body = Buffer.alloc(Math.floor(random() * 200));
        for (let j = 0; j < body.length; j++) body[j] = Math.floor(random() * 256);
        bytes = kernel.request(Math.floor(random() * 50), pick(nodeids), body);
      }
      // DESTROY would end the session and make the rest of the run trivial.
      if (bytes.readUInt32LE(4) === Opcode.DESTROY) bytes.writeUInt32LE(Opcode.GETATTR, 4);
      const header = decodeInHeader(bytes);
      const reply = await server.handle({ header, body: bytes.subarray(40) });
      if (reply === undefined) {
        assert.ok(NO_REPLY.has(header.opcode), `opcode ${header.opcode} got no reply`);
        continue;
      }
      assert.equal(reply.readUInt32LE(0), reply.length);
      assert.equal(reply.readBigUInt64LE(8), header.unique);
      assert.ok(reply.readInt32LE(4) <= 0);
    }
    assert.equal(await readFile(join(outside, "secret"), "utf8"), "SECRET");
    assert.deepEqual(await readdir(outside), ["secret"]);
  } finally {
    await server.close();
    await rm(base, { recursive: true, force: true });
  }
}
