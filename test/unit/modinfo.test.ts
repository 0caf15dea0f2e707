import { test } from "node:test";
import assert from "node:assert/strict";
import { loadOrder, moduleDepends, normalizeModuleName } from "../../src/setup/modinfo.js";

/** A minimal little-endian ELF64 with a .shstrtab and a .modinfo section. */
function fakeKo(modinfo: string): Buffer {
  const shstrtab = Buffer.from("\0.shstrtab\0.modinfo\0", "latin1");
  const info = Buffer.from(modinfo, "latin1");
  const shoff = 64 + shstrtab.length + info.length;
  const elf = Buffer.alloc(shoff + 3 * 64);
  elf.writeUInt32LE(0x464c457f, 0);
  elf[4] = 2; // 64-bit
  elf[5] = 1; // little-endian
  elf.writeBigUInt64LE(BigInt(shoff), 0x28);
  elf.writeUInt16LE(64, 0x3a);
  elf.writeUInt16LE(3, 0x3c);
  elf.writeUInt16LE(1, 0x3e);
  shstrtab.copy(elf, 64);
  info.copy(elf, 64 + shstrtab.length);
  const section = (i: number, nameOff: number, offset: number, size: number): void => {
    const base = shoff + i * 64;
    elf.writeUInt32LE(nameOff, base);
    elf.writeBigUInt64LE(BigInt(offset), base + 24);
    elf.writeBigUInt64LE(BigInt(size), base + 32);
  };
  section(1, 1, 64, shstrtab.length);
  section(2, 11, 64 + shstrtab.length, info.length);
  return elf;
}

test("depends= is read from the .modinfo section", () => {
  const ko = fakeKo("license=GPL\0depends=net_failover,virtio-ring\0name=virtio_net\0");
  assert.deepEqual(moduleDepends(ko), ["net_failover", "virtio_ring"]);
  assert.deepEqual(moduleDepends(fakeKo("depends=\0name=virtio_ring\0")), []);
  assert.deepEqual(moduleDepends(Buffer.from("not an elf")), []);
});

test("load order puts dependencies first, skips built-ins, and names missing modules", () => {
  const deps: Record<string, string[]> = {
    virtio_ring: [],
    virtio: ["virtio_ring"],
    virtio_mmio: ["virtio", "virtio_ring"],
    virtio_net: ["net_failover", "virtio", "virtio_ring"],
    net_failover: ["failover"],
    failover: [],
    overlay: [],
  };
  const order = loadOrder(
    ["virtio_mmio", "virtio-net", "overlay", "ext4"],
    new Set(["ext4"]),
    (n) => deps[n],
  );
  assert.deepEqual(order, [
    "virtio_ring",
    "virtio",
    "virtio_mmio",
    "failover",
    "net_failover",
    "virtio_net",
    "overlay",
  ]);
  assert.throws(
    () => loadOrder(["fuse"], new Set(), (n) => deps[n]),
    /kernel module not found: fuse/,
  );
  assert.throws(
    () => loadOrder(["a"], new Set(), (n) => ({ a: ["b"], b: ["a"] })[n]),
    /cycle: a -> b -> a/,
  );
  assert.equal(normalizeModuleName("virtio-rng"), "virtio_rng");
});
