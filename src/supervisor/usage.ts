/** `inspect` and serve's `GET /v1/sandboxes/{id}`: a long-lived sandbox's usage. */
import type { SandboxUsage } from "../observe/index.js";
import { getRecord } from "../state/index.js";
import { settledWithin } from "../util/index.js";
import { connectSupervised } from "./connect.js";

/**
 * Asked of the sandbox while it runs (undefined when it does not answer within `timeoutMs`:
 * a busy or dying guest must not hold up the caller); once stopped, the final figures its
 * supervisor wrote into the record.
 */
export async function supervisedUsage(
  id: string,
  timeoutMs: number,
): Promise<SandboxUsage | undefined> {
  const record = getRecord(id);
  if (record.status !== "running") return record.usage;
  return settledWithin(
    Promise.resolve().then(() => connectSupervised(id).usage()),
    timeoutMs,
  );
}
