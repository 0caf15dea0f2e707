/**
 * How far a minimal-kernel build got, shared through a small file so that other processes
 * (`setup` run again, `run` while a background build goes on) can say so in one line.
 */
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pidAlive } from "../util/index.js";

export interface KernelBuildStatus {
  pid: number;
  startedAtMs: number;
  /** Compiler and assembler steps finished so far (`CC`, `AS`, `LD` lines of make's output). */
  compiledFiles: number;
}

/** Written by a build in progress, removed when it ends. */
export function buildStatusPath(cacheDir: string): string {
  return join(cacheDir, "kernel-min", "build-status.json");
}

/**
 * What the status file says: no build (no file, or a garbled one), a build whose process runs,
 * or one whose process died without removing it (killed, out of memory, a reboot).
 */
export type BuildStatusRead =
  | { state: "none" }
  | { state: "running"; status: KernelBuildStatus }
  | { state: "died"; status: KernelBuildStatus };

export function readBuildStatusFile(cacheDir: string): BuildStatusRead {
  let status: KernelBuildStatus;
  try {
    status = JSON.parse(readFileSync(buildStatusPath(cacheDir), "utf8")) as KernelBuildStatus;
  } catch {
    return { state: "none" };
  }
  const fine =
    typeof status === "object" &&
    status !== null &&
    Number.isSafeInteger(status.pid) &&
    status.pid > 0 &&
    Number.isFinite(status.startedAtMs) &&
    Number.isSafeInteger(status.compiledFiles);
  if (!fine) return { state: "none" };
  return pidAlive(status.pid) ? { state: "running", status } : { state: "died", status };
}

/** The running build's status; undefined when none runs (no file, or its process is gone). */
export function readBuildStatus(cacheDir: string): KernelBuildStatus | undefined {
  const read = readBuildStatusFile(cacheDir);
  return read.state === "running" ? read.status : undefined;
}

/** Writes the status atomically; best effort (progress must never fail a build). */
export function writeBuildStatus(cacheDir: string, status: KernelBuildStatus): void {
  const path = buildStatusPath(cacheDir);
  const tmp = `${path}.${process.pid}`;
  try {
    writeFileSync(tmp, JSON.stringify(status), { mode: 0o600 });
    renameSync(tmp, path);
  } catch {
    // Progress is a courtesy: a full disk must not fail the build over it.
  }
}

/**
 * About how many CC/AS/LD/AR steps the bzImage build of guest/kernel/wheellock.config over
 * linux-source-6.1 prints: an estimate (tinyconfig's ~600 objects plus the fragment's block,
 * ext4, virtio, net, FUSE and overlay code), not yet a count; a finished build logs its real
 * count ("built in N s (M compile steps)") to calibrate it. Enough for "about N %", which is
 * capped below 100 until the build ends.
 */
export const EXPECTED_BUILD_STEPS = 1150;

/** e.g. "about 45 % (512 files compiled in 4 min 10 s)". */
export function describeBuild(status: KernelBuildStatus, nowMs = Date.now()): string {
  const s = Math.max(0, Math.round((nowMs - status.startedAtMs) / 1000));
  const took = s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
  // Unpacking the source and configuring come first (a minute or two, nothing compiled yet).
  if (status.compiledFiles === 0) return `unpacking and configuring the source (${took})`;
  const percent = Math.min(99, Math.floor((100 * status.compiledFiles) / EXPECTED_BUILD_STEPS));
  return `about ${percent} % (${status.compiledFiles} files compiled in ${took})`;
}

const STEP = /^\s+(CC|AS|LD|AR)\s+\S/;
const WRITE_EVERY_MS = 3000;
const LOG_EVERY_MS = 30_000;

/**
 * Counts make's steps as its output streams by, keeps the status file current and logs a
 * progress line every 30 s, so a multi-minute build never looks hung.
 */
export class BuildProgress {
  private readonly status: KernelBuildStatus;
  private lastWriteMs = 0;
  private lastLogMs: number;

  constructor(
    private readonly cacheDir: string,
    private readonly log: (m: string) => void,
    nowMs = Date.now(),
  ) {
    this.status = { pid: process.pid, startedAtMs: nowMs, compiledFiles: 0 };
    this.lastLogMs = nowMs;
    this.write(nowMs);
  }

  onLine(line: string, nowMs = Date.now()): void {
    if (!STEP.test(line)) return;
    this.status.compiledFiles++;
    if (nowMs - this.lastWriteMs >= WRITE_EVERY_MS) this.write(nowMs);
    if (nowMs - this.lastLogMs >= LOG_EVERY_MS) {
      this.lastLogMs = nowMs;
      this.log(`minimal guest kernel: ${describeBuild(this.status, nowMs)}`);
    }
  }

  get compiledFiles(): number {
    return this.status.compiledFiles;
  }

  end(): void {
    rmSync(buildStatusPath(this.cacheDir), { force: true });
  }

  private write(nowMs: number): void {
    this.lastWriteMs = nowMs;
    writeBuildStatus(this.cacheDir, this.status);
  }
}
