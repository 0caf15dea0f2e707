// Restore figures (issue 16): create + first exec, cold vs restored from a snapshot, for the
// default image, a host-dir workspace mount, an OCI image and an extra disk (`--disk`), interleaved round by round (a
// shared machine's drifting load then hits every kind alike); and the whole CLI
// `run -- true` cold vs restored against the SDK's restore in the same rounds.
// Alone: `npm run bench:restore` (prints JSON); `npm run bench` includes it.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Sandbox, type SandboxOptions } from "../src/index.js";
import { buildImage, busyboxEntries, layerTar } from "../test/helpers/oci-build.js";
import { pushImage, startRegistry } from "../test/helpers/registry.js";

const now = (): number => Number(process.hrtime.bigint()) / 1e6;
const round = (n: number): number => Math.round(n * 100) / 100;

export function stats(samples: number[]) {
  const s = [...samples].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
  return { min: round(s[0] ?? NaN), p50: round(at(0.5)), max: round(at(1)), n: s.length };
}

/** One start's parts: create, the first `exec(["true"])`, and a second one (warm). */
interface StartParts {
  createMs: number;
  firstExecMs: number;
  secondExecMs: number;
}

/**
 * create + first `exec(["true"])`, and whether it restored; `parts` also gets the create and
 * the first exec apart and a second exec after them (not in the returned time). A second exec
 * runs the same guest code warm: under TCG the first exec's excess is mostly translating it.
 */
export async function createToFirstExec(
  options: SandboxOptions,
  parts?: StartParts[],
): Promise<[number, boolean]> {
  const t = now();
  const sb = await Sandbox.create(options);
  try {
    const created = now();
    const run = async () => {
      const r = await sb.exec(["true"]);
      if (r.exitCode !== 0) throw new Error(`true exited ${r.exitCode}: ${r.stderr}`);
    };
    await run();
    const total = now() - t;
    if (parts) {
      const second = now();
      await run();
      parts.push({
        createMs: created - t,
        firstExecMs: t + total - created,
        secondExecMs: now() - second,
      });
    }
    return [total, sb.restoredFromSnapshot];
  } finally {
    await sb.close();
  }
}

/** How long QEMU takes to start and answer its monitor, with no guest at all (`-S`). */
function bareQemuStartMs(): number {
  const t = now();
  const r = spawnSync(
    "qemu-system-x86_64",
    ["-M", "microvm", "-accel", "tcg", "-S", "-nodefaults", "-display", "none", "-qmp", "stdio"],
    { input: '{"execute":"qmp_capabilities"}\n{"execute":"quit"}\n', encoding: "utf8" },
  );
  if (r.status !== 0) throw new Error(`qemu -S: ${r.stderr}`);
  return now() - t;
}

/** The whole CLI process, as a user types it (`entry`: another build's main.js, for an A/B). */
export function cliRunTrueMs(snapshot: boolean, entry = "dist/cli/main.cjs"): number {
  const t = now();
  const args = [entry, "run", ...(snapshot ? [] : ["--no-snapshot"]), "--", "true"];
  const r = spawnSync(process.execPath, args, { stdio: "inherit" });
  if (r.status !== 0) throw new Error(`wheellock ${args.slice(1).join(" ")} exited ${r.status}`);
  return now() - t;
}

interface KindRounds {
  coldMs: number[];
  restoreMs: number[];
}

function summary(k: KindRounds) {
  return {
    coldCreateToFirstExecMs: stats(k.coldMs),
    restoreCreateToFirstExecMs: stats(k.restoreMs),
    speedupPerRound: stats(k.coldMs.map((c, i) => c / k.restoreMs[i]!)),
  };
}

export async function restoreBench(
  rounds: number,
  log: (msg: string) => void,
): Promise<Record<string, unknown>> {
  const workspace = mkdtempSync(join(tmpdir(), "wl-bench-ws-"));
  writeFileSync(join(workspace, "README"), "a workspace file\n");
  const diskDir = mkdtempSync(join(tmpdir(), "wl-bench-disk-"));
  const disk = join(diskDir, "disk.ext4");
  const mkfs = spawnSync("mkfs.ext4", ["-q", "-F", disk, "64M"], { encoding: "utf8" });
  if (mkfs.status !== 0) throw new Error(`mkfs.ext4: ${mkfs.stderr}`);
  log("restore: a busybox OCI image in a registry on 127.0.0.1");
  const reg = await startRegistry();
  try {
    const entries = [
      ...busyboxEntries(),
      { name: "bin/true", type: "symlink" as const, linkname: "busybox" },
    ];
    await pushImage(reg.host, "bench/busybox", "v1", buildImage([await layerTar(entries)]));
    const kinds: Record<string, SandboxOptions> = {
      plain: {},
      workspaceMount: { mounts: { "/workspace": { type: "host_fs", hostPath: workspace } } },
      ociImage: { image: `${reg.host}/bench/busybox:v1` },
      disk: { disks: [{ hostPath: disk, guestPath: "/data" }] },
    };
    const results: Record<string, KindRounds> = {};
    for (const [name, options] of Object.entries(kinds)) {
      // Pulls the image, saves the snapshot: nothing of it lands in a measured start.
      const [, restored] = await createToFirstExec({ ...options, snapshot: true });
      const [, again] = await createToFirstExec({ ...options, snapshot: true });
      if (!again) throw new Error(`${name}: no restore after priming (first: ${restored})`);
      results[name] = { coldMs: [], restoreMs: [] };
    }
    const cli: { coldMs: number[]; restoreMs: number[]; sdkRestoreMs: number[] } = {
      coldMs: [],
      restoreMs: [],
      sdkRestoreMs: [],
    };
    const plainRestoreParts: StartParts[] = [];
    const bareQemuMs: number[] = [];
    for (let i = 0; i < rounds; i++) {
      log(`restore round ${i + 1}/${rounds}`);
      for (const [name, options] of Object.entries(kinds)) {
        const [coldMs] = await createToFirstExec({ ...options, snapshot: false });
        const [restoreMs, restored] = await createToFirstExec(
          { ...options, snapshot: true },
          name === "plain" ? plainRestoreParts : undefined,
        );
        if (!restored) throw new Error(`${name}: expected a restore`);
        results[name]!.coldMs.push(coldMs);
        results[name]!.restoreMs.push(restoreMs);
      }
      cli.coldMs.push(cliRunTrueMs(false));
      cli.restoreMs.push(cliRunTrueMs(true));
      cli.sdkRestoreMs.push((await createToFirstExec({ snapshot: true }))[0]);
      bareQemuMs.push(bareQemuStartMs());
    }
    const part = (k: keyof StartParts) => stats(plainRestoreParts.map((p) => p[k]));
    return {
      ...Object.fromEntries(Object.entries(results).map(([k, v]) => [k, summary(v)])),
      // Where the default image's restore goes, same rounds: what no restore under this
      // accelerator can go below is QEMU's own start plus the guest code run cold after the
      // state loads (the first exec's excess over a warm one, and the CONFIGURE in create).
      plainRestoreAnatomy: {
        createMs: part("createMs"),
        firstExecMs: part("firstExecMs"),
        secondExecMs: part("secondExecMs"),
        bareQemuStartMs: stats(bareQemuMs),
      },
      cliRunTrue: {
        coldMs: stats(cli.coldMs),
        restoreMs: stats(cli.restoreMs),
        sdkRestoreMs: stats(cli.sdkRestoreMs),
        cliRestoreVsSdkRestorePerRound: stats(
          cli.restoreMs.map((c, i) => c / cli.sdkRestoreMs[i]!),
        ),
        cliColdVsCliRestorePerRound: stats(cli.coldMs.map((c, i) => c / cli.restoreMs[i]!)),
      },
    };
  } finally {
    await reg.stop();
    rmSync(workspace, { recursive: true, force: true });
    rmSync(diskDir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rounds = Number(process.env.ROUNDS ?? 8);
  const out = await restoreBench(rounds, (m) => process.stderr.write(`bench: ${m}\n`));
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
}
