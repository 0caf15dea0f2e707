// The snapshot artifact's parts without a VM or a registry: the sparse encoding of RAM and
// disk files (round trip, holes kept, hostile streams refused) and the strict parsing of the
// key document and the manifest a registry hands us.
import assert from "node:assert/strict";
import {
  closeSync,
  ftruncateSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
  parseKeyDocument,
  parseSnapshotManifest,
  SNAPSHOT_MEDIA,
  type SnapshotKeyDocument,
} from "../../src/snapshot/artifact.js";
import { cpuMismatch, hostCpuDigest } from "../../src/snapshot/identity.js";
import { decodeSparse, encodeSparse } from "../../src/snapshot/sparse-codec.js";

const dir = mkdtempSync(join(tmpdir(), "wl-snapart-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
const MIB = 1024 * 1024;
let n = 0;
const fresh = (): string => join(dir, `f${n++}`);

/** A sparse file of `size` bytes with data at the given offsets (holes elsewhere). */
function sparseFile(size: number, writes: Array<[number, Buffer]>): string {
  const path = fresh();
  const fd = openSync(path, "w");
  ftruncateSync(fd, size);
  for (const [at, data] of writes) writeSync(fd, data, 0, data.length, at);
  closeSync(fd);
  return path;
}

async function collect(gen: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of gen) parts.push(c);
  return Buffer.concat(parts);
}

async function* chunks(b: Buffer, size = 777): AsyncGenerator<Buffer> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

test("sparse encoding: round trip keeps every byte and the holes", async () => {
  const size = 16 * MIB + 4096 + 100; // not page-aligned at the end
  const data = [
    [0, Buffer.from("start")],
    [5000, Buffer.alloc(9000, 0xab)],
    [4 * MIB + 7, Buffer.from("middle")],
    [size - 50, Buffer.alloc(50, 0xcd)],
  ] as Array<[number, Buffer]>;
  const src = sparseFile(size, data);
  const encoded = await collect(encodeSparse(src));
  assert.ok(encoded.length < 64 * 1024, `encoded ${encoded.length} bytes`);
  const out = fresh();
  await decodeSparse(chunks(encoded), out, size);
  assert.equal(statSync(out).size, size);
  assert.ok(readFileSync(out).equals(readFileSync(src)));
  assert.ok(statSync(out).blocks * 512 < 1 * MIB, "holes stay holes");
});

test("sparse decoding refuses malformed and hostile streams, and writes nothing past the size", async () => {
  const size = 2 * MIB;
  const good = await collect(encodeSparse(sparseFile(size, [[8192, Buffer.alloc(4096, 1)]])));
  const u64 = (v: number): Buffer => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(v));
    return b;
  };
  const u32 = (v: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v);
    return b;
  };
  const header = Buffer.concat([Buffer.from("WLSPARS1"), u64(size)]);
  const end = Buffer.concat([u64(size), u32(0)]);
  const extent = (at: number, len: number): Buffer =>
    Buffer.concat([u64(at), u32(len), Buffer.alloc(len, 7)]);
  const cases: Array<[string, Buffer, RegExp]> = [
    ["wrong magic", Buffer.concat([Buffer.from("XXXXXXXX"), good.subarray(8)]), /no sparse header/],
    [
      "other size",
      Buffer.concat([Buffer.from("WLSPARS1"), u64(size * 2), good.subarray(16)]),
      /holds/,
    ],
    ["truncated", good.subarray(0, good.length - 5), /truncated/],
    ["no end marker", good.subarray(0, good.length - 12), /truncated/],
    ["trailing data", Buffer.concat([good, Buffer.from("x")]), /after the end/],
    ["past the end", Buffer.concat([header, extent(size - 4096, 8192), end]), /too large/],
    ["unaligned", Buffer.concat([header, extent(100, 4096), end]), /unaligned/],
    [
      "out of order",
      Buffer.concat([header, extent(8192, 4096), extent(0, 4096), end]),
      /out of order/,
    ],
    ["end marker elsewhere", Buffer.concat([header, u64(4096), u32(0)]), /end marker/],
  ];
  for (const [what, stream, message] of cases) {
    const out = fresh();
    await assert.rejects(decodeSparse(chunks(stream), out, size), message, what);
    assert.ok(statSync(out).size <= size, what);
  }
});

test("sparse decoding stops at the data budget: a small stream cannot fill the disk", async () => {
  // A hostile artifact declares a large file and sends non-zero pages (which gzip would shrink
  // ~1000:1 on the wire): what is written is bounded by the pull's budget, shared by the
  // layers, not by the size the artifact declares.
  const size = 64 * MIB;
  const src = sparseFile(size, [
    [0, Buffer.alloc(4 * MIB, 1)],
    [32 * MIB, Buffer.alloc(4 * MIB, 2)],
  ]);
  const encoded = await collect(encodeSparse(src));
  const budget = { remainingBytes: 6 * MIB };
  const out = fresh();
  await assert.rejects(
    decodeSparse(chunks(encoded, 64 * 1024), out, size, budget),
    /no space left/,
  );
  assert.ok(statSync(out).blocks * 512 <= 6 * MIB + 1 * MIB, "wrote past the budget");
  // Within the budget, the same stream decodes whole.
  const roomy = { remainingBytes: 16 * MIB };
  await decodeSparse(chunks(encoded, 64 * 1024), fresh(), size, roomy);
  assert.equal(roomy.remainingBytes, 8 * MIB);
});

const doc: SnapshotKeyDocument = {
  wheellockSnapshot: 1,
  format: 3,
  qemu: `sha256:${"1".repeat(64)}`,
  kernel: `sha256:${"2".repeat(64)}`,
  initramfs: `sha256:${"3".repeat(64)}`,
  image: { digest: `sha256:${"4".repeat(64)}`, name: "default" },
  accel: "tcg",
  hostCpu: null,
  vcpus: 1,
  memoryMb: 512,
  diskSizeMb: 5120,
  kernelArgs: ["wheellock.net=10.0.2.15/24,10.0.2.2,65520"],
  networkMtu: 65520,
  createdAt: "2026-01-01T00:00:00.000Z",
};

test("the key document: a valid one round-trips; anything off is refused", () => {
  assert.deepEqual(parseKeyDocument(Buffer.from(JSON.stringify(doc))), doc);
  const bad: Array<[string, unknown]> = [
    ["version", { ...doc, wheellockSnapshot: 3 }],
    ["version 2 without disk slots", { ...doc, wheellockSnapshot: 2 }],
    ["digest", { ...doc, kernel: "sha256:abc" }],
    ["accelerator", { ...doc, accel: "hvf" }],
    ["kvm without its host CPU", { ...doc, accel: "kvm" }],
    ["kvm with a made-up host CPU", { ...doc, accel: "kvm", hostCpu: "intel" }],
    ["tcg with a host CPU", { ...doc, hostCpu: `sha256:${"5".repeat(64)}` }],
    ["vcpus", { ...doc, vcpus: 0 }],
    ["memory", { ...doc, memoryMb: 1.5 }],
    ["kernel args", { ...doc, kernelArgs: [1] }],
    ["image", { ...doc, image: { name: "default" } }],
    ["mtu", { ...doc, networkMtu: 10 }],
  ];
  for (const [what, value] of bad)
    assert.throws(
      () => parseKeyDocument(Buffer.from(JSON.stringify(value))),
      {
        code: "ErrSnapshotMismatch",
      },
      what,
    );
  assert.throws(() => parseKeyDocument(Buffer.from("{")), /not JSON/);
});

test("disk slots: version 2 carries them, version 1 (older artifacts) has none", () => {
  // An artifact written before disk slots could be pushed parses as it did: no slots.
  const old = parseKeyDocument(Buffer.from(JSON.stringify(doc)));
  assert.equal(old.diskSlots, undefined);
  assert.equal(old.wheellockSnapshot, 1);
  const slotted = { ...doc, wheellockSnapshot: 2, diskSlots: ["rw", "ro"] };
  assert.deepEqual(parseKeyDocument(Buffer.from(JSON.stringify(slotted))), slotted);
  const bad: Array<[string, unknown, RegExp]> = [
    ["slots in a version 1 key", { ...doc, diskSlots: ["rw"] }, /version 1/],
    ["slots not a list", { ...slotted, diskSlots: "rw" }, /not a list/],
    ["no slots", { ...slotted, diskSlots: [] }, /0 disk slots/],
    ["too many slots", { ...slotted, diskSlots: Array(9).fill("rw") }, /9 disk slots/],
    ["a huge count", { ...slotted, diskSlots: Array(100_000).fill("ro") }, /100000 disk slots/],
    ["a slot of another type", { ...slotted, diskSlots: ["rw", 1] }, /not "rw" or "ro"/],
    ["an unknown slot", { ...slotted, diskSlots: ["rw", "wo"] }, /not "rw" or "ro"/],
    ["a negative count", { ...slotted, diskSlots: { length: -1 } }, /not a list/],
  ];
  for (const [what, value, message] of bad)
    assert.throws(
      () => parseKeyDocument(Buffer.from(JSON.stringify(value))),
      (err: Error & { code?: string }) =>
        err.code === "ErrSnapshotMismatch" &&
        message.test(err.message) &&
        !err.message.includes("\n"),
      what,
    );
});

test("the manifest: only a wheellock snapshot with its three layers is accepted", () => {
  const d = (mediaType: string, size = 10): object => ({
    mediaType,
    digest: `sha256:${"a".repeat(64)}`,
    size,
  });
  const manifest = {
    schemaVersion: 2,
    config: d(SNAPSHOT_MEDIA.config),
    layers: [d(SNAPSHOT_MEDIA.state), d(SNAPSHOT_MEDIA.memory), d(SNAPSHOT_MEDIA.disk)],
  };
  const parsed = parseSnapshotManifest(Buffer.from(JSON.stringify(manifest)));
  assert.equal(parsed.memory.mediaType, SNAPSHOT_MEDIA.memory);
  const refused: Array<[string, object]> = [
    ["an image", { ...manifest, config: d("application/vnd.oci.image.config.v1+json") }],
    ["two layers", { ...manifest, layers: manifest.layers.slice(0, 2) }],
    [
      "layers swapped",
      { ...manifest, layers: [manifest.layers[1], manifest.layers[0], manifest.layers[2]] },
    ],
    ["a huge key", { ...manifest, config: d(SNAPSHOT_MEDIA.config, 10 * MIB) }],
    [
      "a huge state",
      {
        ...manifest,
        layers: [d(SNAPSHOT_MEDIA.state, 1024 * MIB), manifest.layers[1], manifest.layers[2]],
      },
    ],
  ];
  for (const [what, m] of refused)
    assert.throws(
      () => parseSnapshotManifest(Buffer.from(JSON.stringify(m))),
      {
        code: "ErrSnapshotMismatch",
      },
      what,
    );
});

test("a KVM snapshot restores only on the processor model that saved it", () => {
  const cpu = (flags: string, extra = ""): string =>
    `processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 143\n${extra}flags\t\t: ${flags}\n\nprocessor\t: 1\nflags\t\t: other\n`;
  const here = hostCpuDigest(cpu("fpu sse2 avx512f amx_tile"));
  // Flag order, clock speed and microcode do not change what a guest may execute.
  assert.equal(
    hostCpuDigest(cpu("amx_tile avx512f sse2 fpu", "cpu MHz\t\t: 2100.000\nmicrocode\t: 0x2b\n")),
    here,
  );
  const older = hostCpuDigest(cpu("fpu sse2 avx512f"));
  assert.notEqual(older, here);
  assert.notEqual(hostCpuDigest(cpu("fpu sse2 avx512f amx_tile").replace("143", "85")), here);
  const kvm: SnapshotKeyDocument = { ...doc, accel: "kvm", hostCpu: here };
  assert.deepEqual(cpuMismatch(kvm, here), []);
  assert.match(cpuMismatch(kvm, older).join(), /saved on another processor model/);
  assert.deepEqual(cpuMismatch(doc, older), [], "TCG's CPU model is QEMU's, not the host's");
  assert.match(hostCpuDigest(), /^sha256:[a-f0-9]{64}$/, "this machine's /proc/cpuinfo");
});
