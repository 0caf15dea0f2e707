import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Sandbox } from "../src/index.js";
import { guestMs } from "./guest-time.js";
import { listenRawPort } from "./raw-serial.js";
import { workspaceBenchOptions } from "./workspace-sandbox.js";
const dir = mkdtempSync(join(tmpdir(), "wl-f19-"));
mkdirSync(join(dir, "h")); mkdirSync(join(dir, "i"));
const raw = await listenRawPort(dir);
const sb = await Sandbox.create(workspaceBenchOptions(join(dir, "h"), join(dir, "i")), { rawPorts: [raw.port] });
const N = 2000;
try {
  const sock = await raw.connection;
  sock.on("data", (c: Buffer) => sock.write(c));
  const dev = `/dev/$(grep -l '^wheellock.raw$' /sys/class/virtio-ports/*/name | xargs dirname | xargs basename)`;
  for (let r = 0; r < 3; r++) {
    const ms = await guestMs(sb, "true", `perl -e 'open(F,"+<","'${dev}'") or die; my $b; for(1..${N}){syswrite F,"x"x40; sysread F,$b,4096}'`);
    console.error(`pingpong: ${(ms / N * 1000).toFixed(1)} us/rt`);
    const h = ((globalThis as any).__wlFuseHist ??= new Map()) as Map<string, number>; h.clear();
    const st0 = (await sb.exec("cat /tmp/relay.stats")).stdout;
    const ms2 = await guestMs(sb, "true", `perl -e 'for(1..${N}){chmod 0644,"/workspace"}'`);
    const st1 = (await sb.exec("cat /tmp/relay.stats")).stdout;
    console.error(`chmod on mount: ${(ms2 / N * 1000).toFixed(1)} us/op host ${((h.get("SETATTR_us") ?? 0) / (h.get("SETATTR") ?? 1)).toFixed(1)} us all ${((h.get("ALL_us") ?? 0) / (h.get("ALL") ?? 1)).toFixed(1)} us n=${h.get("ALL")}; relay ${st0.trim()} -> ${st1.trim()}`);
    h.clear();
    await sb.exec("touch /workspace/f");
    const ms4 = await guestMs(sb, "true", `perl -e 'for(1..${N}){open(F,"<","/workspace/f"); close F}'`);
    console.error(`open/close on mount: ${(ms4 / N * 1000).toFixed(1)} us/op ${JSON.stringify([...h.entries()])}`);
    const ms3 = await guestMs(sb, "true", `perl -e 'for(1..${N}){my @s=stat("/proc/self")}'`);
    console.error(`stat /proc/self: ${(ms3 / N * 1000).toFixed(1)} us/op`);
  }
} finally { await sb.close(); raw.close(); }
