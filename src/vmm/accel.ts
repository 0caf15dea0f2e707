import { accessSync, constants, existsSync } from "node:fs";

export type Accel = "kvm" | "tcg";
export type AccelChoice = Accel | "auto";

export interface AccelDecision {
  accel: Accel;
  /** Why this accelerator was chosen: shown by `diagnose` and in boot errors. */
  reason: string;
}

/** What the host offers, gathered separately so the decision logic is testable. */
export interface HostVirtFacts {
  kvmDeviceUsable: boolean;
  /** Hardware-backed KVM modules: these can run a standard guest kernel. */
  hardwareKvmModule: boolean;
  /**
   * Paravirtual nested KVM (kvm_pvm): /dev/kvm exists, but a standard kernel hangs right after
   * the boot loader, so it must be treated as "no KVM".
   */
  paravirtKvmModule: boolean;
}

export function probeHostVirt(): HostVirtFacts {
  let kvmDeviceUsable = false;
  try {
    accessSync("/dev/kvm", constants.R_OK | constants.W_OK);
    kvmDeviceUsable = true;
  } catch {
    kvmDeviceUsable = false;
  }
  return {
    kvmDeviceUsable,
    hardwareKvmModule: existsSync("/sys/module/kvm_intel") || existsSync("/sys/module/kvm_amd"),
    paravirtKvmModule: existsSync("/sys/module/kvm_pvm"),
  };
}

export function chooseAccel(choice: AccelChoice, facts: HostVirtFacts): AccelDecision {
  if (choice === "tcg") return { accel: "tcg", reason: "requested (--accel tcg)" };
  if (choice === "kvm") {
    if (!facts.kvmDeviceUsable) {
      throw new Error("--accel kvm: /dev/kvm is missing or not readable and writable by this user");
    }
    return { accel: "kvm", reason: "requested (--accel kvm)" };
  }
  if (!facts.kvmDeviceUsable) return { accel: "tcg", reason: "no usable /dev/kvm" };
  if (facts.paravirtKvmModule && !facts.hardwareKvmModule) {
    return { accel: "tcg", reason: "paravirtual KVM (kvm_pvm) cannot boot a standard kernel" };
  }
  return { accel: "kvm", reason: "/dev/kvm with hardware virtualisation" };
}

export function detectAccel(choice: AccelChoice = "auto"): AccelDecision {
  return chooseAccel(choice, probeHostVirt());
}
