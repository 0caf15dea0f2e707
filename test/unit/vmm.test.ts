import { test } from "node:test";
import assert from "node:assert/strict";
import {
  chooseAccel,
  kernelCommandLine,
  INCOMING_STATE_FD,
  planQemuLaunch,
  SAVE_STATE_FD,
  type LaunchDescriptor,
  type VmSpec,
} from "../../src/vmm/index.js";

const buildQemuArgs = (spec: VmSpec): string[] => planQemuLaunch(spec).args;

const facts = (over: Partial<Parameters<typeof chooseAccel>[1]> = {}) => ({
  kvmDeviceUsable: true,
  hardwareKvmModule: true,
  paravirtKvmModule: false,
  ...over,
});

test("auto picks KVM only when it can run a standard kernel", () => {
  assert.equal(chooseAccel("auto", facts()).accel, "kvm");
  assert.equal(chooseAccel("auto", facts({ kvmDeviceUsable: false })).accel, "tcg");
  const pvm = chooseAccel("auto", facts({ hardwareKvmModule: false, paravirtKvmModule: true }));
  assert.equal(pvm.accel, "tcg");
  assert.match(pvm.reason, /kvm_pvm/);
});

test("explicit accelerator choices are honoured or refused clearly", () => {
  assert.equal(chooseAccel("tcg", facts()).accel, "tcg");
  assert.equal(chooseAccel("kvm", facts({ paravirtKvmModule: true })).accel, "kvm");
  assert.throws(() => chooseAccel("kvm", facts({ kvmDeviceUsable: false })), /\/dev\/kvm/);
});

const spec: VmSpec = {
  accel: "tcg",
  cpus: 2,
  memoryMb: 768,
  kernelPath: "/k/vmlinuz",
  initramfsPath: "/k/initrd",
  kernelArgs: ["wheellock.privileged=1"],
  disks: [
    { path: "/img/root,odd.ext4", serial: "wl-root", readonly: true },
    { path: "/run/upper.ext4", serial: "wl-upper", readonly: false },
  ],
  controlSocketPath: "/run/ctl.sock",
  consoleLogPath: "/run/console.log",
  consoleSocketPath: "/run/console.sock",
};

function optionAfter(args: string[], flag: string): string[] {
  return args.flatMap((a, i) => (args[i - 1] === flag ? [a] : []));
}

/** The descriptor QEMU gets as `fd`. */
function described(plan: { descriptors: LaunchDescriptor[] }, fd: number): LaunchDescriptor {
  const found = plan.descriptors.find((d) => d.fd === fd);
  assert.ok(found, `no descriptor ${fd}`);
  return found;
}

test("QEMU argv: microvm, no default devices, resources, disks by serial", () => {
  const plan = planQemuLaunch(spec);
  const args = plan.args;
  assert.ok(args.includes("-nodefaults"));
  assert.ok(args.includes("-no-reboot"));
  assert.deepEqual(optionAfter(args, "-M"), ["microvm,rtc=on"]);
  assert.deepEqual(optionAfter(args, "-accel"), ["tcg"]);
  assert.deepEqual(optionAfter(args, "-smp"), ["2"]);
  assert.deepEqual(optionAfter(args, "-m"), ["768M"]);
  const drives = optionAfter(args, "-drive");
  assert.equal(drives.length, 2);
  assert.match(drives[0]!, /file=\/dev\/fdset\/1,/);
  assert.match(drives[0]!, /readonly=on/);
  assert.match(drives[1]!, /file=\/dev\/fdset\/2,/);
  assert.match(drives[1]!, /readonly=off/);
  // The read-only disk is one read-only descriptor; the writable one is offered both ways
  // (QEMU picks an fdset member by access mode).
  const sets = optionAfter(args, "-add-fd").map((o) => /^fd=(\d+),set=(\d+)$/.exec(o)!);
  assert.deepEqual(
    sets.map((m) => [m[2], described(plan, Number(m[1]))]),
    [
      ["1", { fd: Number(sets[0]![1]), kind: "file", path: "/img/root,odd.ext4", write: false }],
      ["2", { fd: Number(sets[1]![1]), kind: "file", path: "/run/upper.ext4", write: false }],
      ["2", { fd: Number(sets[2]![1]), kind: "file", path: "/run/upper.ext4", write: true }],
    ],
  );
  const devices = optionAfter(args, "-device");
  assert.ok(devices.includes("virtio-blk-device,drive=disk0,serial=wl-root"));
  assert.ok(devices.includes("virtserialport,chardev=ctl,name=wheellock.ctl"));
  assert.ok(!args.includes("-netdev"), "no NIC unless a network socket is given");
});

test("QEMU argv: under TCG the guest CPU has no fast REP MOVSB (ERMS, FSRM); KVM passes the host's", () => {
  // With ERMS the guest kernel copies with `rep movsb`, one byte per TCG loop iteration
  // (docs/PERFORMANCE.md, "Sequential read through a mount, session 14").
  assert.deepEqual(optionAfter(buildQemuArgs(spec), "-cpu"), ["max,-erms,-fsrm"]);
  assert.deepEqual(optionAfter(buildQemuArgs({ ...spec, accel: "kvm" }), "-cpu"), ["host"]);
});

test("QEMU argv: network socket adds a jumbo-MTU virtio-net NIC", () => {
  const plan = planQemuLaunch({ ...spec, networkSocketPath: "/run/net.sock" });
  const args = plan.args;
  const netdev = /^stream,id=net0,server=off,addr\.type=fd,addr\.str=(\d+)$/.exec(
    optionAfter(args, "-netdev")[0]!,
  );
  assert.ok(netdev);
  assert.deepEqual(described(plan, Number(netdev[1])), {
    fd: Number(netdev[1]),
    kind: "connect",
    path: "/run/net.sock",
  });
  assert.ok(optionAfter(args, "-device").includes("virtio-net-device,netdev=net0,host_mtu=65520"));
});

test("kernel command line calibrates the TSC only under TCG", () => {
  assert.match(kernelCommandLine(spec), /tsc_early_khz=/);
  assert.doesNotMatch(kernelCommandLine({ ...spec, accel: "kvm" }), /tsc_early_khz/);
  assert.match(kernelCommandLine(spec), /wheellock\.privileged=1$/);
});

test("a restore waits for QMP, maps the saved RAM copy-on-write and never names the state file", () => {
  const plan = planQemuLaunch({
    ...spec,
    incomingStatePath: "/snap/it's.state",
    qmpSocketPath: "/run/qmp.sock",
    memoryFile: { path: "/snap/r,am", shared: false },
  });
  const args = plan.args;
  assert.equal(args[args.indexOf("-incoming") + 1], "defer");
  assert.deepEqual(described(plan, INCOMING_STATE_FD), {
    fd: INCOMING_STATE_FD,
    kind: "file",
    path: "/snap/it's.state",
    write: false,
  });
  const qmp = /^socket,id=qmp,fd=(\d+)$/.exec(optionAfter(args, "-chardev").at(-1) ?? "");
  assert.ok(qmp, "the monitor is an inherited socket");
  assert.equal(described(plan, Number(qmp[1])).kind, "connect");
  assert.deepEqual(optionAfter(args, "-mon"), ["chardev=qmp,mode=control"]);
  assert.match(args[args.indexOf("-M") + 1] ?? "", /,memory-backend=wl-ram$/);
  const backend = args[args.indexOf("-object") + 1] ?? "";
  const memPath =
    /^memory-backend-file,id=wl-ram,size=768M,mem-path=\/proc\/self\/fd\/(\d+),share=off$/.exec(
      backend,
    );
  assert.ok(memPath, `a restored guest's writes must never reach the snapshot: ${backend}`);
  // QEMU 7.2 opens a private file mapping read-write: the jail must allow that (jail.ts).
  assert.deepEqual(described(plan, Number(memPath[1])), {
    fd: Number(memPath[1]),
    kind: "reopen",
    path: "/snap/r,am",
    write: true,
  });
  const saving = planQemuLaunch({ ...spec, memoryFile: { path: "/run/ram", shared: true } });
  const savingRam = /mem-path=\/proc\/self\/fd\/(\d+),share=on$/.exec(
    saving.args[saving.args.indexOf("-object") + 1] ?? "",
  );
  assert.ok(savingRam);
  assert.equal(described(saving, Number(savingRam[1])).kind, "reopen");
  assert.deepEqual(
    { ...described(saving, Number(savingRam[1])), fd: 0 },
    { fd: 0, kind: "reopen", path: "/run/ram", write: true, create: true },
  );
  const plain = buildQemuArgs(spec);
  for (const flag of ["-incoming", "-object", "-mon"]) assert.equal(plain.indexOf(flag), -1);
  assert.equal(plain[plain.indexOf("-M") + 1], "microvm,rtc=on");
});

test("QEMU is confined by its seccomp filter and opens no host path by name", () => {
  const plan = planQemuLaunch({
    ...spec,
    networkSocketPath: "/run/net.sock",
    rawPorts: [{ name: "wheellock.fuse", socketPath: "/run/fuse.sock" }],
    qmpSocketPath: "/run/qmp.sock",
    saveStateSocketPath: "/run/save.sock",
    memoryFile: { path: "/run/ram", shared: true },
    name: "/run",
  });
  assert.deepEqual(optionAfter(plan.args, "-sandbox"), [
    "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
  ]);
  // Only the name (for gc and ps) mentions the run dir; everything else is a descriptor.
  assert.deepEqual(optionAfter(plan.args, "-name"), ["guest=/run"]);
  const withoutName = plan.args.filter((a, i) => plan.args[i - 1] !== "-name");
  for (const path of ["/run", "/k/", "/img/"]) {
    assert.ok(
      !withoutName.some((a) => a.includes(path)),
      `${path} named in ${withoutName.join(" ")}`,
    );
  }
  assert.deepEqual(optionAfter(plan.args, "-kernel"), [
    `/proc/self/fd/${plan.descriptors.find((d) => "path" in d && d.path === "/k/vmlinuz")!.fd}`,
  ]);
  // The state is saved through the socket QEMU reaches by its O_PATH descriptor (no exec:).
  assert.deepEqual(described(plan, SAVE_STATE_FD), {
    fd: SAVE_STATE_FD,
    kind: "path",
    path: "/run/save.sock",
  });
  const console = /^socket,id=console,fd=(\d+)$/.exec(optionAfter(plan.args, "-chardev")[0]!);
  assert.ok(console);
  assert.deepEqual(described(plan, Number(console[1])), {
    fd: Number(console[1]),
    kind: "console",
    path: "/run/console.sock",
  });
  assert.deepEqual(optionAfter(plan.args, "-serial"), ["chardev:console"]);
  // Every descriptor has its own number, none of them stdin/stdout/stderr.
  const fds = plan.descriptors.map((d) => d.fd);
  assert.equal(new Set(fds).size, fds.length);
  assert.ok(fds.every((fd) => fd >= 3));
});
