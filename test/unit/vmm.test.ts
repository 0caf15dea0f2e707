import { test } from "node:test";
import assert from "node:assert/strict";
import { buildQemuArgs, chooseAccel, kernelCommandLine, type VmSpec } from "../../src/vmm/index.js";

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
};

function optionAfter(args: string[], flag: string): string[] {
  return args.flatMap((a, i) => (args[i - 1] === flag ? [a] : []));
}

test("QEMU argv: microvm, no default devices, resources, disks by serial", () => {
  const args = buildQemuArgs(spec);
  assert.ok(args.includes("-nodefaults"));
  assert.ok(args.includes("-no-reboot"));
  assert.deepEqual(optionAfter(args, "-M"), ["microvm,rtc=on"]);
  assert.deepEqual(optionAfter(args, "-accel"), ["tcg"]);
  assert.deepEqual(optionAfter(args, "-smp"), ["2"]);
  assert.deepEqual(optionAfter(args, "-m"), ["768M"]);
  const drives = optionAfter(args, "-drive");
  assert.equal(drives.length, 2);
  // A comma in a path must be doubled or QEMU would split the option there.
  assert.match(drives[0]!, /file=\/img\/root,,odd\.ext4,/);
  assert.match(drives[0]!, /readonly=on/);
  assert.match(drives[1]!, /readonly=off/);
  const devices = optionAfter(args, "-device");
  assert.ok(devices.includes("virtio-blk-device,drive=disk0,serial=wl-root"));
  assert.ok(devices.includes("virtserialport,chardev=ctl,name=wheellock.ctl"));
  assert.ok(!args.includes("-netdev"), "no NIC unless a network socket is given");
});

test("QEMU argv: network socket adds a jumbo-MTU virtio-net NIC", () => {
  const args = buildQemuArgs({ ...spec, networkSocketPath: "/run/net.sock" });
  assert.match(
    optionAfter(args, "-netdev")[0]!,
    /^stream,.*addr\.type=unix,addr\.path=\/run\/net\.sock/,
  );
  assert.ok(optionAfter(args, "-device").includes("virtio-net-device,netdev=net0,host_mtu=65520"));
});

test("kernel command line calibrates the TSC only under TCG", () => {
  assert.match(kernelCommandLine(spec), /tsc_early_khz=/);
  assert.doesNotMatch(kernelCommandLine({ ...spec, accel: "kvm" }), /tsc_early_khz/);
  assert.match(kernelCommandLine(spec), /wheellock\.privileged=1$/);
});

test("a restore waits for QMP, maps the saved RAM copy-on-write and never names the state file", () => {
  const args = buildQemuArgs({
    ...spec,
    incomingStatePath: "/snap/it's.state",
    qmpConnectPath: "/run/qmp-in.sock",
    memoryFile: { path: "/snap/r,am", shared: false },
  });
  assert.equal(args[args.indexOf("-incoming") + 1], "defer");
  assert.ok(!args.some((a) => a.includes("it's.state")), "the state is read from an fd");
  assert.equal(args[args.indexOf("-qmp") + 1], "unix:/run/qmp-in.sock");
  assert.match(args[args.indexOf("-M") + 1] ?? "", /,memory-backend=wl-ram$/);
  const backend = args[args.indexOf("-object") + 1] ?? "";
  assert.match(backend, /^memory-backend-file,id=wl-ram,size=768M,mem-path=\/snap\/r,,am,/);
  assert.match(backend, /share=off$/, "a restored guest's writes must never reach the snapshot");
  const saving = buildQemuArgs({ ...spec, memoryFile: { path: "/run/ram", shared: true } });
  assert.match(saving[saving.indexOf("-object") + 1] ?? "", /share=on$/);
  const plain = buildQemuArgs(spec);
  for (const flag of ["-incoming", "-object", "-qmp"]) assert.equal(plain.indexOf(flag), -1);
  assert.equal(plain[plain.indexOf("-M") + 1], "microvm,rtc=on");
});
