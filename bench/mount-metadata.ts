// Metadata on host-dir mounts (issue 17): the same guest commands on a `host_fs` mount and on
// the VM's own root disk, in one VM and one run: untar of a 5,000-file source tree taken from
// this repository's node_modules (many small files in nested packages), `git status` on a
// 10,000-file repository (cold: page, dentry and inode caches dropped first; warm: right
// after), and a sequential read, with the raw virtio-serial rate the FUSE relay rides on.
// Alone: `npm run bench:mount` (JSON on stdout); `npm run bench` includes it. On a loaded
// machine a smaller run: `npm run bench:mount -- --untar-files 1000 --repo-files 2000
// --read-mb 32` (the sizes used are in the JSON).
// git is not in the default image: the host's git (Debian bookworm, like the image; it needs
// only libc, libz and libpcre2) is lent through a read-only mount, as test/vm/vfs-posix does.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Sandbox } from "../src/index.js";
import { guestMs, DROP_CACHES } from "./guest-time.js";
import { fuseRequestStats, type RequestStatsSnapshot } from "../src/vfs/request-stats.js";
import { listenRawPort, rawRoundTripUs, rawSerialInMBps, rawSerialMBps } from "./raw-serial.js";
import { workspaceBenchOptions } from "./workspace-sandbox.js";

const round = (n: number): number => Math.round(n * 100) / 100;
/** The sizes; smaller ones only where a loaded machine cannot finish these. */
export interface MountBenchSizes {
  readonly untarFiles: number;
  readonly repoFiles: number;
  readonly readMb: number;
}
const FULL: MountBenchSizes = { untarFiles: 5000, repoFiles: 10_000, readMb: 128 };
const TARGETS = { rootDisk: "/root/bench", hostDir: "/workspace/bench" } as const;
type Target = keyof typeof TARGETS;
// The index arrives from the host: with a minimal stat check (size and mtime seconds, which
// tar keeps) it matches the extracted files, so no status has to re-hash the whole tree first.
const GIT =
  "/opt/tools/git -c safe.directory=* -c core.untrackedCache=false -c core.checkStat=minimal -c core.trustctime=false";

function sh(cmd: string, args: string[], cwd?: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** The host's 1, 5 and 15 minute load averages (the VM competes for the same cores). */
function loadAverage(): number[] {
  return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).map(Number);
}

/** The first `count` files of node_modules (sorted: whole packages, nested dirs). */
function nodeModulesFiles(count: number): string[] {
  const root = join(import.meta.dirname, "..");
  const all = sh("find", ["-L", "node_modules", "-type", "f"], root).trim().split("\n").sort();
  if (all.length < count) throw new Error(`node_modules has ${all.length} files, need ${count}`);
  return all.slice(0, count);
}

/** tree.tar (5,000 files) and repo.tar (a committed 10,000-file git repository) in `inputs`. */
function makeInputs(inputs: string, sizes: MountBenchSizes): void {
  const root = join(import.meta.dirname, "..");
  const list = join(inputs, "tree.list");
  writeFileSync(list, `${nodeModulesFiles(sizes.untarFiles).join("\n")}\n`);
  sh("tar", ["-chf", join(inputs, "tree.tar"), "-C", root, "-T", list]);
  const repo = join(inputs, "repo-src");
  mkdirSync(repo);
  const repoList = join(inputs, "repo.list");
  writeFileSync(repoList, `${nodeModulesFiles(sizes.repoFiles).join("\n")}\n`);
  sh("sh", ["-c", `tar -chf - -C "${root}" -T "${repoList}" | tar -xf - -C "${repo}"`]);
  // gc.auto=0: the commit of 10,000 files would start git's automatic gc in the background,
  // and the explicit gc below would then fail with "gc is already running".
  const git = ["-c", "user.name=b", "-c", "user.email=b@example.com", "-c", "gc.auto=0"];
  sh("git", ["init", "-q", "--template=", repo]);
  sh("git", [...git, "-C", repo, "add", "-A", "-f"]);
  sh("git", [...git, "-C", repo, "commit", "-qm", "tree"]);
  // One pack, as a clone has: 10,000 loose objects would double what the untar creates.
  sh("git", ["-C", repo, "gc", "-q"]);
  sh("tar", ["-cf", join(inputs, "repo.tar"), "-C", repo, "."]);
  rmSync(repo, { recursive: true });
  const git0 = sh("sh", ["-c", "command -v git"]).trim();
  mkdirSync(join(inputs, "tools"));
  copyFileSync(git0, join(inputs, "tools", "git"));
}

/** One line for the log: requests, host time, then the ten commonest opcodes. */
function requestLine(s: RequestStatsSnapshot): string {
  const top = Object.entries(s.byOpcode)
    .slice(0, 10)
    .map(([op, v]) => `${op} ${v.requests}`)
    .join(", ");
  return `${s.requests} FUSE requests (${top}), ${s.notifications} notifications, host ${Math.round(s.hostMs)} ms`;
}

async function measure(sb: Sandbox, dir: string, readMb: number, log: (msg: string) => void) {
  // FUSE requests per step (none on the root disk): which ones each file costs (issue 17).
  const requests: Record<string, RequestStatsSnapshot> = {};
  const step = (name: string): void => {
    requests[name] = fuseRequestStats.take();
    if (requests[name].requests > 0) log(`    ${requestLine(requests[name])}`);
  };
  await sb.exec(`rm -rf ${dir} && mkdir -p ${dir}/tree ${dir}/repo`);
  fuseRequestStats.take();
  const untarMs = await guestMs(
    sb,
    DROP_CACHES,
    `tar -xf /dev/shm/tree.tar -C ${dir}/tree && sync`,
  );
  log(`  untar ${round(untarMs)} ms`);
  step("untar");
  await sb.exec(`tar -xf /dev/shm/repo.tar -C ${dir}/repo`);
  const status = `cd ${dir}/repo && ${GIT} status --porcelain >/tmp/status.out`;
  fuseRequestStats.take();
  const gitStatusColdMs = await guestMs(sb, DROP_CACHES, status);
  log(`  git status cold ${round(gitStatusColdMs)} ms`);
  step("gitStatusCold");
  const gitStatusWarmMs = await guestMs(sb, "true", status);
  log(`  git status warm ${round(gitStatusWarmMs)} ms`);
  step("gitStatusWarm");
  const clean = await sb.exec("wc -c </tmp/status.out");
  if (clean.stdout.trim() !== "0") throw new Error(`the repository in ${dir} is not clean`);
  await sb.exec(`dd if=/dev/zero of=${dir}/big bs=1M count=${readMb} 2>/dev/null`);
  fuseRequestStats.take();
  const readMs = await guestMs(sb, DROP_CACHES, `dd if=${dir}/big of=/dev/null bs=1M 2>/dev/null`);
  log(`  read ${readMb} MiB in ${round(readMs)} ms`);
  step("seqRead");
  await sb.exec(`rm -rf ${dir}`);
  return {
    untarMs: round(untarMs),
    gitStatusColdMs: round(gitStatusColdMs),
    gitStatusWarmMs: round(gitStatusWarmMs),
    seqReadMBps: round(readMb / (readMs / 1000)),
    requests,
  };
}

export async function mountMetadataBench(
  log: (msg: string) => void,
  sizes: MountBenchSizes = FULL,
) {
  const dir = mkdtempSync(join(tmpdir(), "wl-bench-mount-"));
  const hostDir = join(dir, "host");
  const inputs = join(dir, "inputs");
  mkdirSync(hostDir);
  mkdirSync(inputs);
  log("mount metadata: building the tree and the repository on the host");
  makeInputs(inputs, sizes);
  const raw = await listenRawPort(dir);
  const sb = await Sandbox.create(workspaceBenchOptions(hostDir, inputs), {
    rawPorts: [raw.port],
  });
  try {
    const cp = await sb.exec(
      "cp /opt/inputs/tree.tar /opt/inputs/repo.tar /dev/shm/ && mkdir -p /opt/tools && cp /opt/inputs/tools/git /opt/tools/git",
    );
    if (cp.exitCode !== 0) throw new Error(`copying inputs: ${cp.stderr}`);
    const loadBefore = loadAverage();
    fuseRequestStats.enabled = true;
    const results = {} as Record<Target, Awaited<ReturnType<typeof measure>>>;
    for (const [name, path] of Object.entries(TARGETS) as [Target, string][]) {
      log(`mount metadata: ${name} (${path})`);
      results[name] = await measure(sb, path, sizes.readMb, log);
    }
    fuseRequestStats.enabled = false;
    const rawSerial = round(await rawSerialMBps(sb, raw.connection, sizes.readMb * 1024 * 1024));
    // FUSE reads travel host -> guest; the figure above is guest -> host.
    const rawIn = round(await rawSerialInMBps(sb, raw.connection, sizes.readMb * 1024 * 1024));
    const rawRoundTrip = round(await rawRoundTripUs(sb, raw.connection, 2000));
    const perRequestUs = (k: "untar" | "gitStatusCold") => {
      const n = results.hostDir.requests[k]?.requests ?? 0;
      const ms = k === "untar" ? results.hostDir.untarMs : results.hostDir.gitStatusColdMs;
      return n > 0 ? round((ms * 1000) / n) : undefined;
    };
    log(
      `raw port: out ${rawSerial} MB/s, in ${rawIn} MB/s, round trip ${rawRoundTrip} us; ` +
        `untar ${perRequestUs("untar")} us per FUSE request`,
    );
    const slower = (k: "untarMs" | "gitStatusColdMs" | "gitStatusWarmMs") =>
      round(results.hostDir[k] / results.rootDisk[k]);
    return {
      accel: sb.accel,
      ...sizes,
      loadAverageBefore: loadBefore,
      loadAverageAfter: loadAverage(),
      ...results,
      baselineRawSerialMBps: rawSerial,
      baselineRawSerialInMBps: rawIn,
      baselineRawRoundTripUs: rawRoundTrip,
      untarUsPerFuseRequest: perRequestUs("untar"),
      gitStatusColdUsPerFuseRequest: perRequestUs("gitStatusCold"),
      untarTimesRootDisk: slower("untarMs"),
      gitStatusColdTimesRootDisk: slower("gitStatusColdMs"),
      gitStatusWarmTimesRootDisk: slower("gitStatusWarmMs"),
      seqReadVsRootDisk: round(results.hostDir.seqReadMBps / results.rootDisk.seqReadMBps),
      seqReadVsRawSerial: round(results.hostDir.seqReadMBps / rawSerial),
      seqReadVsRawSerialIn: round(results.hostDir.seqReadMBps / rawIn),
    };
  } finally {
    fuseRequestStats.enabled = false;
    await sb.close();
    raw.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      "untar-files": { type: "string", default: String(FULL.untarFiles) },
      "repo-files": { type: "string", default: String(FULL.repoFiles) },
      "read-mb": { type: "string", default: String(FULL.readMb) },
    },
  });
  const sizes = {
    untarFiles: Number(values["untar-files"]),
    repoFiles: Number(values["repo-files"]),
    readMb: Number(values["read-mb"]),
  };
  if (!Object.values(sizes).every((n) => Number.isInteger(n) && n > 0)) {
    throw new Error("--untar-files, --repo-files and --read-mb take positive integers");
  }
  const out = await mountMetadataBench((m) => process.stderr.write(`bench: ${m}\n`), sizes);
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
}
