// Checkpoint of a sandbox with disks: time, pause and size with a read-write disk holding
// WHEELLOCK_BENCH_DISK_MB (default 64) MB of random data and a read-only disk, against the
// same sandbox's checkpoint without disks in the same run; a second checkpoint (what dedup
// leaves to store); a copy's start to first exec from each. Numbers, not pass/fail
// (docs/PERFORMANCE.md). `node --import tsx bench/checkpoint-disks.ts`
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Sandbox, type CheckpointInfo, type SandboxOptions } from "../src/index.js";
import { removeCheckpoint } from "../src/sandbox/index.js";

const DISK_MB = Number(process.env.WHEELLOCK_BENCH_DISK_MB ?? 64);
const now = (): number => Number(process.hrtime.bigint()) / 1e6;
const mb = (bytes: number): string => (bytes / 1e6).toFixed(1);

function row(what: string, info: CheckpointInfo, copyMs: number): string {
  const s = info.sizes;
  return (
    `| ${what} | ${info.durationMs} | ${info.pausedMs} | ${mb(s.stateBytes)} | ` +
    `${mb(s.upperDataBytes)} | ${mb(s.diskDataBytes)} | ${mb(s.newBytes)} | ` +
    `${mb(s.sharedBytes)} | ${Math.round(copyMs)} |`
  );
}

async function measure(what: string, options: SandboxOptions, setup: string): Promise<string[]> {
  const sb = await Sandbox.create({ timeoutSeconds: 600, ...options });
  const rows: string[] = [];
  try {
    await sb.exec(setup);
    for (const round of ["first", "second"]) {
      const name = `bench-${sb.id}-${round}`;
      const info = await sb.checkpoint(name);
      const started = now();
      const copy = await Sandbox.create({ fromCheckpoint: name });
      await copy.exec("true");
      const copyMs = now() - started;
      await copy.close();
      rows.push(row(`${what}, ${round} checkpoint`, info, copyMs));
      await sb.exec("echo more >> /root/more; sync");
    }
    for (const round of ["first", "second"]) await removeCheckpoint(`bench-${sb.id}-${round}`);
  } finally {
    await sb.close();
  }
  return rows;
}

const dir = mkdtempSync(join(tmpdir(), "wl-bench-ckdisk-"));
process.env.WHEELLOCK_DATA_DIR = join(dir, "data");
try {
  const rw = join(dir, "rw.ext4");
  const ro = join(dir, "ro.ext4");
  execFileSync("mkfs.ext4", ["-q", "-F", rw, `${DISK_MB * 2}M`]);
  execFileSync("mkfs.ext4", ["-q", "-F", ro, `${DISK_MB * 2}M`]);
  const fill = (path: string): string =>
    `head -c ${DISK_MB * 1024 * 1024} /dev/urandom > ${path} && sync`;
  const rows = [
    ...(await measure("no disks", {}, fill("/root/data"))),
    ...(await measure(
      `rw disk (${DISK_MB} MB written) + ro disk`,
      {
        disks: [
          { hostPath: rw, guestPath: "/data" },
          { hostPath: ro, guestPath: "/ro", readonly: true },
        ],
      },
      fill("/data/data"),
    )),
  ];
  console.log(
    "| sandbox | checkpoint ms | paused ms | state MB | upper MB | disks MB | new MB | shared MB | copy to first exec ms |",
  );
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const r of rows) console.log(r);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
