// Filesystem figures from inside one VM: a host directory mounted through FUSE (host_fs), a
// named volume attached as a block device, and the VM's own root disk as the baseline, each
// measured by the same guest commands in the same run. JSON on stdout, progress on stderr.
//   npm run bench:vfs   (or: node --import tsx bench/vfs.ts)
// See docs/PERFORMANCE.md for what each figure means.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Sandbox, createVolume, removeVolume } from "../src/index.js";
import { DROP_CACHES, guestMs } from "./guest-time.js";
import { listenRawPort, rawSerialMBps } from "./raw-serial.js";
import { workspaceBenchOptions } from "./workspace-sandbox.js";

const log = (msg: string) => process.stderr.write(`bench-vfs: ${msg}\n`);
const round = (n: number): number => Math.round(n * 100) / 100;
const FILE_MB = 256;
const META_FILES = 10_000;

/** Targets: guest directory to measure in, and what it is. */
const TARGETS = {
  rootDisk: "/root/bench",
  fuseHostDir: "/workspace/bench",
  volumeDisk: "/vol/bench",
} as const;
type Target = keyof typeof TARGETS;

async function measure(sb: Sandbox, dir: string) {
  await sb.exec(`rm -rf ${dir} && mkdir -p ${dir}`);
  const writeMs = await guestMs(
    sb,
    DROP_CACHES,
    `dd if=/dev/zero of=${dir}/big bs=1M count=${FILE_MB} conv=fsync 2>/dev/null`,
  );
  const readMs = await guestMs(sb, DROP_CACHES, `dd if=${dir}/big of=/dev/null bs=1M 2>/dev/null`);
  await sb.exec(`rm -f ${dir}/big`);
  // One process for all 30k operations (perl-base is in every Debian image), so the figure is
  // the file system's, not fork+exec under emulation.
  const metaMs = await guestMs(
    sb,
    `mkdir -p ${dir}/meta && cd ${dir}/meta`,
    `perl -e 'for (1..${META_FILES}) { open(my $f, ">", "f$_") or die "$!" } ` +
      `for (1..${META_FILES}) { stat("f$_") or die "$!" } ` +
      `for (1..${META_FILES}) { unlink("f$_") or die "$!" }'`,
  );
  const untarMs = await guestMs(
    sb,
    `mkdir -p ${dir}/tree`,
    `tar -xf /dev/shm/tree.tar -C ${dir}/tree && sync`,
  );
  await sb.exec(`rm -rf ${dir}`);
  return {
    seqWriteMBps: round(FILE_MB / (writeMs / 1000)),
    seqReadMBps: round(FILE_MB / (readMs / 1000)),
    metadataOpsPerSec: round((3 * META_FILES) / (metaMs / 1000)),
    untarMs: round(untarMs),
  };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "wl-bench-vfs-"));
  const hostDir = join(dir, "host");
  const inputs = join(dir, "inputs");
  spawnSync("mkdir", ["-p", hostDir, inputs]);
  // The source tree: this repository without node_modules, plus eslint's package (many small
  // files, like a typical dependency tree).
  const root = join(import.meta.dirname, "..");
  const tar = spawnSync("tar", [
    "-cf",
    join(inputs, "tree.tar"),
    "--exclude=./node_modules",
    "--exclude=./.git",
    "-C",
    root,
    ".",
    "-C",
    join(root, "node_modules"),
    "eslint",
  ]);
  if (tar.status !== 0) throw new Error(`tar: ${tar.stderr.toString()}`);
  const listing = spawnSync("tar", ["-tf", join(inputs, "tree.tar")], { encoding: "utf8" });
  const treeEntries = listing.stdout.trim().split("\n").length;
  const volume = `bench-${process.pid}`;
  await createVolume(volume, 1024);
  const raw = await listenRawPort(dir);
  const sb = await Sandbox.create(
    { ...workspaceBenchOptions(hostDir, inputs), disks: [{ volume, guestPath: "/vol" }] },
    { rawPorts: [raw.port] },
  );
  try {
    await sb.exec("cp /opt/inputs/tree.tar /dev/shm/tree.tar");
    const results = {} as Record<Target, Awaited<ReturnType<typeof measure>>>;
    for (const [name, path] of Object.entries(TARGETS) as [Target, string][]) {
      log(`${name} (${path})`);
      results[name] = await measure(sb, path);
    }
    // Where the metadata time goes: one FUSE round trip (a LOOKUP of a missing name, from
    // perl so no process starts per call) against one control-channel round trip.
    const t = performance.now();
    for (let i = 0; i < 300; i++) await sb.files.ping();
    const controlPingMs = round((performance.now() - t) / 300);
    const rtt = await sb.exec(
      'perl -e \'use Time::HiRes qw(time); my $t = time; lstat("/workspace/missing$_") for 1..3000; ' +
        'printf("%.4f", (time - $t) * 1000 / 3000)\'',
    );
    const fuseLookupRttMs = round(Number(rtt.stdout));
    // FUSE replies ride on virtio-serial: its raw rate is the ceiling for reads from a mount.
    const rawSerial = round(await rawSerialMBps(sb, raw.connection, FILE_MB * 1024 * 1024));
    const ratio = (t: Target, k: "seqWriteMBps" | "seqReadMBps" | "metadataOpsPerSec") =>
      round(results[t][k] / results.rootDisk[k]);
    process.stdout.write(
      `${JSON.stringify(
        {
          accel: sb.accel,
          fileMB: FILE_MB,
          metadataFiles: META_FILES,
          treeTarEntries: treeEntries,
          ...results,
          roundTrips: { fuseLookupMs: fuseLookupRttMs, controlPingMs },
          baselineRawSerialMBps: rawSerial,
          fuseSeqReadVsRawSerial: round(results.fuseHostDir.seqReadMBps / rawSerial),
          ratiosVsRootDisk: {
            fuseSeqWrite: ratio("fuseHostDir", "seqWriteMBps"),
            fuseSeqRead: ratio("fuseHostDir", "seqReadMBps"),
            fuseMetadata: ratio("fuseHostDir", "metadataOpsPerSec"),
            fuseUntarTime: round(results.fuseHostDir.untarMs / results.rootDisk.untarMs),
            volumeSeqWrite: ratio("volumeDisk", "seqWriteMBps"),
            volumeSeqRead: ratio("volumeDisk", "seqReadMBps"),
            volumeMetadata: ratio("volumeDisk", "metadataOpsPerSec"),
            volumeUntarTime: round(results.volumeDisk.untarMs / results.rootDisk.untarMs),
          },
        },
        null,
        2,
      )}\n`,
    );
  } finally {
    await sb.close();
    raw.close();
    await removeVolume(volume);
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
