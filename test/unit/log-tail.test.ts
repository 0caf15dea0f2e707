// Boot failures quote the console's tail (src/vmm/qemu-process.ts, logTail). When the guest
// agent stopped the boot, its own lines say why: the kernel panic after them must not push
// them out of the message.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { logTail } from "../../src/vmm/index.js";

function tailOf(lines: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), "wl-logtail-"));
  try {
    writeFileSync(join(dir, "console.log"), `${lines.join("\n")}\n`);
    return logTail(join(dir, "console.log"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const panic = Array.from({ length: 40 }, (_, i) => `R${i}: 0xffffffff8104ae1f`);

test("an agent's FATAL line and the lines before it are the tail, not the panic after", () => {
  const tail = tailOf([
    "[    0.1] booting",
    "wheellock-agent: disk wl-disk0 (/dev/vdc) on /data: Invalid argument",
    "wheellock-agent: FATAL: mounting a disk: Invalid argument",
    "Kernel panic - not syncing: Attempted to kill init!",
    ...panic,
  ]);
  assert.equal(
    tail,
    "wheellock-agent: disk wl-disk0 (/dev/vdc) on /data: Invalid argument\n" +
      "wheellock-agent: FATAL: mounting a disk: Invalid argument",
  );
});

test("without a FATAL line the tail is the last lines, agent lines or not", () => {
  const tail = tailOf(["wheellock-agent: fuse relay stopped: x", ...panic]);
  assert.equal(tail, panic.slice(-15).join("\n"));
});
