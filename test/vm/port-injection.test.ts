// Issue 19, finding 4: guest root re-binds the virtio console driver through sysfs, which
// recreates the control port with nobody holding it, opens it and writes frames of its own
// (a forged EXIT). The host must never hand a forged exit status to the caller: the agent
// powers off when its port disappears, the host refuses frames without the session token,
// and without `privileged` /sys is read-only so the driver cannot be unbound at all.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ErrProtocol, ErrVMNotRunning, Sandbox, type VmSandbox } from "../../src/index.js";
import { FrameType } from "../../src/channel/contract.js";
import { encodeFrame } from "../../src/channel/frame.js";
import { isolateDataDir } from "../helpers/vm.js";

isolateDataDir();
const open: VmSandbox[] = [];

after(async () => {
  await Promise.all(open.map((sb) => sb.close()));
});

async function create(options: Parameters<typeof Sandbox.create>[0]): Promise<VmSandbox> {
  const sb = await Sandbox.create({ noNetwork: true, ...options });
  open.push(sb);
  return sb;
}

/** The virtio device (`virtioN`) behind the control port, as guest root finds it. */
const FIND_DEVICE =
  "port=$(grep -l '^wheellock.ctl$' /sys/class/virtio-ports/*/name); " +
  'dev=$(basename "$(readlink -f "$(dirname "$port")/device")"); ';
const DRIVER = "/sys/bus/virtio/drivers/virtio_console";

/**
 * EXIT 42 for every stream id from 64 down to 1, in the current frame format, without the
 * session token the attacker cannot know: ids above the attack's own exec are ignored as
 * unknown, so the first one to land is the attack's own stream.
 */
function forgedExits(): Buffer {
  const exit = Buffer.alloc(8);
  exit.writeInt32BE(42, 0);
  const frames: Buffer[] = [];
  for (let id = 64; id >= 1; id--) frames.push(encodeFrame(FrameType.Exit, id, exit));
  return Buffer.concat(frames);
}

const ATTACK = [
  "set -e",
  FIND_DEVICE,
  `echo "$dev" > ${DRIVER}/unbind`,
  `echo "$dev" > ${DRIVER}/bind`,
  "for i in $(seq 200); do",
  "  new=$(grep -l '^wheellock.ctl$' /sys/class/virtio-ports/*/name 2>/dev/null || true)",
  '  [ -n "$new" ] && [ -e "/dev/$(basename "$(dirname "$new")")" ] && break',
  "  sleep 0.05",
  "done",
  'cat /tmp/forged.bin > "/dev/$(basename "$(dirname "$new")")"',
  "sleep 60",
].join("\n");

describe("a re-bound control port cannot inject frames", () => {
  test("privileged root re-binds the driver and forges EXIT: the caller never sees it", async (t) => {
    const sb = await create({ privileged: true });
    // A privileged sandbox keeps a writable /sys (that is what `privileged` means).
    assert.match((await sb.exec("grep ' /sys ' /proc/mounts")).stdout, /\srw[,\s]/);
    await sb.writeFile("/tmp/forged.bin", forgedExits());
    await sb.writeFile("/tmp/attack.sh", ATTACK);
    const attack = sb.spawn(["sh", "/tmp/attack.sh"]);
    const outcome = await Promise.race([
      attack.wait().then(
        (exit) => ({ exit }),
        (err: unknown) => ({ err }),
      ),
      new Promise<{ hung: true }>((resolve) => setTimeout(() => resolve({ hung: true }), 60_000)),
    ]);
    assert.ok(!("exit" in outcome), `a forged exit reached the caller: ${JSON.stringify(outcome)}`);
    assert.ok("err" in outcome, "the sandbox must end, not hang with a dead port");
    // Whichever layer gets there first: the host refusing the tokenless frame, or the agent
    // powering off when its port vanished (the VM stopped).
    assert.ok(
      outcome.err instanceof ErrProtocol || outcome.err instanceof ErrVMNotRunning,
      String(outcome.err),
    );
    t.diagnostic(`the attack ended with: ${String(outcome.err)}`);
    // The sandbox is over, not just this command (QEMU exits: the agent powered off, or the
    // host stopped it after the protocol error).
    const deadline = Date.now() + 30_000;
    while (sb.running && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.equal(sb.running, false);
  });

  test("without privileged, /sys is read-only: the driver stays bound, the sandbox works", async () => {
    const sb = await create({});
    const r = await sb.exec(
      FIND_DEVICE +
        `echo "$dev" > ${DRIVER}/unbind; echo unbind=$?; ` +
        "grep ' /sys ' /proc/mounts; " +
        // A fresh sysfs mount is no way around it either.
        "mkdir -p /tmp/sys2 && mount -t sysfs sysfs /tmp/sys2; echo mount=$?",
      { timeoutMs: 30_000 },
    );
    assert.match(r.stderr, /Read-only file system/);
    assert.match(r.stdout, /unbind=[1-9]/);
    assert.match(r.stdout, /sysfs \/sys sysfs ro[,\s]/);
    assert.match(r.stdout, /mount=\d*[1-9]/);
    // Ordinary programs read sysfs as before.
    assert.equal((await sb.exec("cat /sys/class/net/lo/mtu")).stdout, "65536\n");
    assert.equal((await sb.exec("echo channel-intact")).stdout, "channel-intact\n");
  });
});
