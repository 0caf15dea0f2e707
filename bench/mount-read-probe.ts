// Where a sequential read through a host-dir mount spends its time (issue 17 item 2, the
// read target): one VM, a 64 MiB file written on the host, `dd bs=1M` after drop_caches at
// several readahead windows, with the guest's CPU split (busy vs idle), the agent's threads'
// CPU, the host's per-READ timing (concurrency, time in the handler) and the raw port's
// host -> guest rate in the same rounds. Diagnostic: `node --import tsx
// bench/mount-read-probe.ts [--mb 64] [--rounds 2] [--ra 1024,4096]` (root; VM lock).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Sandbox } from "../src/index.js";
import { Opcode } from "../src/vfs/fuse-constants.js";
import { fuseRequestStats } from "../src/vfs/request-stats.js";
import { listenRawPort, rawSerialInMBps } from "./raw-serial.js";
import { workspaceBenchOptions } from "./workspace-sandbox.js";

const { values } = parseArgs({
  options: {
    mb: { type: "string", default: "64" },
    rounds: { type: "string", default: "2" },
    ra: { type: "string", default: "1024,4096" },
  },
});
const mb = Number(values.mb);
const rounds = Number(values.rounds);
const windows = values.ra.split(",").map(Number);
const round = (n: number): number => Math.round(n * 100) / 100;

// Host side: each READ's start and end (handler only), from the request-stats hook.
const reads: { start: bigint; end: bigint }[] = [];
const origRecord = fuseRequestStats.record.bind(fuseRequestStats);
fuseRequestStats.start = () => process.hrtime.bigint();
fuseRequestStats.record = (opcode, started) => {
  if (opcode === Opcode.READ && started !== undefined) {
    reads.push({ start: started, end: process.hrtime.bigint() });
  }
  origRecord(opcode, undefined);
};

function readSummary() {
  const first = reads[0];
  const last = reads[reads.length - 1];
  if (first === undefined || last === undefined) return {};
  const host = reads.map((r) => Number(r.end - r.start) / 1e6);
  let overlap = 0;
  const gaps: number[] = [];
  reads.forEach((r, i) => {
    const prev = reads[i - 1];
    if (prev === undefined) return;
    if (r.start < prev.end) overlap++;
    gaps.push(Number(r.start - prev.start) / 1e6);
  });
  gaps.sort((a, b) => a - b);
  return {
    reads: reads.length,
    hostMsMean: round(host.reduce((a, b) => a + b, 0) / host.length),
    startGapMsP50: round(gaps[Math.floor(gaps.length / 2)] ?? 0),
    startsDuringPrevious: overlap,
    hostSpanMs: round(Number(last.end - first.start) / 1e6),
  };
}

const dir = mkdtempSync(join(tmpdir(), "wl-read-probe-"));
const hostDir = join(dir, "host");
const inputs = join(dir, "inputs");
mkdirSync(hostDir);
mkdirSync(inputs);
writeFileSync(join(hostDir, "big"), Buffer.alloc(mb * 1024 * 1024, 7));
const raw = await listenRawPort(dir);
const sb = await Sandbox.create(workspaceBenchOptions(hostDir, inputs), { rawPorts: [raw.port] });
try {
  const bdi = (
    await sb.exec("awk '$5 == \"/run/wheellock/vfs\" {print $3}' /proc/self/mountinfo | head -1")
  ).stdout.trim();
  const out: unknown[] = [];
  for (let r = 0; r < rounds; r++) {
    for (const ra of windows) {
      reads.length = 0;
      const cmd =
        `set -e; echo ${ra} > /sys/class/bdi/${bdi}/read_ahead_kb; sync; echo 3 > /proc/sys/vm/drop_caches; ` +
        `cpu() { head -1 /proc/stat; for t in /proc/1/task/*; do echo "T \${t##*/} $(cut -d' ' -f14,15 $t/stat)"; done; }; ` +
        `cpu; a=$(date +%s%N); dd if=/workspace/big of=/dev/null bs=1M 2>/dev/null; b=$(date +%s%N); echo MARK; cpu; ` +
        `echo US $(( (b-a)/1000 ))`;
      const res = await sb.exec(cmd);
      if (res.exitCode !== 0) throw new Error(res.stderr);
      const [before = "", after = ""] = res.stdout.split("MARK\n");
      const us = Number(/US (\d+)/.exec(after)?.[1]);
      const stat = (s: string) => (s.split("\n")[0] ?? "").trim().split(/\s+/).slice(1).map(Number);
      const s1 = stat(before);
      const s2 = stat(after);
      const d = s2.map((v, i) => v - (s1[i] ?? 0));
      const total = d.reduce((a, b) => a + b, 0);
      const at = (i: number): number => d[i] ?? 0;
      const idle = at(3) + at(4);
      const threads = (s: string) =>
        new Map(
          s
            .split("\n")
            .filter((l) => l.startsWith("T "))
            .map((l) => {
              const [, name, u, k] = l.split(" ");
              return [name, Number(u) + Number(k)] as const;
            }),
        );
      const t1 = threads(before);
      const agentTicks = [...threads(after)].map(([n, v]) => `${n}:${v - (t1.get(n) ?? 0)}`);
      const rawIn = await rawSerialInMBps(sb, raw.connection, mb * 1024 * 1024);
      const row = {
        round: r,
        readAheadKb: ra,
        mountMBps: round(mb / (us / 1e6)),
        rawInMBps: round(rawIn),
        vsRawIn: round(mb / (us / 1e6) / rawIn),
        guestBusy: round(1 - idle / total),
        guestSys: round((at(2) + at(5) + at(6)) / total),
        agentTicks: agentTicks.join(" "),
        ...readSummary(),
      };
      out.push(row);
      process.stderr.write(`probe: ${JSON.stringify(row)}\n`);
    }
  }
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
} finally {
  await sb.close();
  raw.close();
  rmSync(dir, { recursive: true, force: true });
}
