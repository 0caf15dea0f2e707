import { randomBytes } from "node:crypto";

/** Same shape as the reference's ids (`vm-` + 8 hex), so ids read the same in both tools. */
const SANDBOX_ID_PATTERN = /^vm-[0-9a-f]{8}$/;

export function newSandboxId(): string {
  return `vm-${randomBytes(4).toString("hex")}`;
}

export function isSandboxId(value: string): boolean {
  return SANDBOX_ID_PATTERN.test(value);
}
