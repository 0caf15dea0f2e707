import { Command } from "commander";
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, statfsSync } from "node:fs";
import { join } from "node:path";
import { cacheDir, dataDir, makePrivateDir } from "../paths.js";
import { detectAccel, findQemuBinary } from "../vmm/index.js";

type Status = "pass" | "fail" | "warn";
interface Check {
  name: string;
  status: Status;
  message: string;
  fix?: string;
}

function check(name: string, fn: () => Omit<Check, "name">): Check {
  try {
    return { name, ...fn() };
  } catch (err) {
    return { name, status: "fail", message: (err as Error).message };
  }
}

const MIN_FREE_MB = 512;
const WARN_FREE_MB = 2048;

function diskSpace(name: string, dir: string): Check {
  return check(name, () => {
    makePrivateDir(dir);
    const s = statfsSync(dir);
    const freeMb = Math.floor((s.bavail * s.bsize) / 1024 / 1024);
    const message = `${freeMb} MB free in ${dir}`;
    if (freeMb < MIN_FREE_MB) return { status: "fail", message, fix: "free disk space" };
    if (freeMb < WARN_FREE_MB) return { status: "warn", message, fix: "sandbox disks need room" };
    return { status: "pass", message };
  });
}

function runChecks(): Check[] {
  return [
    check("qemu", () => {
      const bin = findQemuBinary();
      const version = execFileSync(bin, ["--version"], { encoding: "utf8" }).split("\n")[0] ?? "";
      return { status: "pass", message: `${bin}: ${version.trim()}` };
    }),
    check("setpriv", () =>
      ["/usr/bin/setpriv", "/bin/setpriv"].some(existsSync)
        ? { status: "pass", message: "found (QEMU dies with its owner)" }
        : {
            status: "warn",
            message: "not found: a killed owner can leave QEMU running",
            fix: "apt-get install util-linux",
          },
    ),
    check("kernel", () => {
      const override = process.env.WHEELLOCK_KERNEL;
      if (override) {
        return existsSync(override)
          ? { status: "pass", message: `WHEELLOCK_KERNEL=${override}` }
          : { status: "fail", message: `WHEELLOCK_KERNEL=${override} does not exist` };
      }
      const dir = join(cacheDir(), "kernel");
      const versions = existsSync(dir)
        ? readdirSync(dir).filter((v) => existsSync(join(dir, v, "kernel.json")))
        : [];
      return versions.length > 0
        ? { status: "pass", message: `cached: ${versions.join(", ")}` }
        : { status: "fail", message: "no guest kernel prepared", fix: "wheellock setup" };
    }),
    check("accelerator", () => {
      const decision = detectAccel(
        (process.env.WHEELLOCK_ACCEL as "auto" | "kvm" | "tcg" | undefined) ?? "auto",
      );
      return {
        status: decision.accel === "kvm" ? "pass" : "warn",
        message: `${decision.accel}: ${decision.reason}`,
        ...(decision.accel === "kvm"
          ? {}
          : { fix: "use a host with hardware virtualisation for speed" }),
      };
    }),
    check("image", () =>
      existsSync(join(cacheDir(), "images", "default"))
        ? { status: "pass", message: "default image built" }
        : { status: "fail", message: "default image not built", fix: "wheellock setup" },
    ),
    diskSpace("disk-space-data", dataDir()),
    diskSpace("disk-space-cache", cacheDir()),
    check("ca", () => {
      const ca = join(dataDir(), "ca");
      return existsSync(ca)
        ? { status: "pass", message: `network interception CA in ${ca}` }
        : {
            status: "warn",
            message: "no interception CA yet (created on first intercepted sandbox)",
          };
    }),
  ];
}

const MARK: Record<Status, string> = { pass: "✓", fail: "✗", warn: "⚠" };

export function diagnoseCommand(): Command {
  return new Command("diagnose")
    .option("--json", "print JSON")
    .action((flags: { json?: boolean }) => {
      const checks = runChecks();
      const ok = checks.every((c) => c.status !== "fail");
      if (flags.json) {
        process.stdout.write(`${JSON.stringify({ ok, checks }, null, 2)}\n`);
      } else {
        for (const c of checks) {
          process.stdout.write(`${MARK[c.status]} ${c.name}: ${c.message}\n`);
          if (c.fix && c.status !== "pass") process.stdout.write(`  fix: ${c.fix}\n`);
        }
      }
      if (!ok) process.exitCode = 1;
    });
}
