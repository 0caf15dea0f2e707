import { Command } from "commander";
import { closeSync, openSync, readSync, statSync } from "node:fs";
import { getRecord, logPath } from "../state/index.js";
import { outputFailed } from "./output.js";
import { addRemoteOption, resolvedRemote, type RemoteFlags } from "./remote-flags.js";

const POLL_MS = 100;

/** Copies the file from `offset` to stdout; returns the new offset (0 again if it shrank). */
function copyFrom(path: string, offset: number): number {
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    return 0; // not written yet
  }
  if (size < offset) offset = 0;
  if (size === offset) return offset;
  const fd = openSync(path, "r");
  try {
    const buf = Buffer.allocUnsafe(64 * 1024);
    while (!outputFailed()) {
      const n = readSync(fd, buf, 0, buf.length, offset);
      if (n <= 0) break;
      process.stdout.write(buf.subarray(0, n));
      offset += n;
    }
  } finally {
    closeSync(fd);
  }
  return offset;
}

/** The same from a node: one slice per call, from where the last one ended. */
async function copyRemote(id: string, onNode: OnNode, offset: number): Promise<number> {
  for (;;) {
    const { data, size } = await onNode.sdk.readRemoteLog(id, onNode.remote, offset);
    if (size < offset) return 0;
    if (data.length === 0 || outputFailed()) return offset;
    process.stdout.write(data);
    offset += data.length;
  }
}

type OnNode = NonNullable<Awaited<ReturnType<typeof resolvedRemote>>>;

export function logCommand(): Command {
  const cmd = new Command("log")
    .argument("<id>", "sandbox id")
    .option("-f, --follow", "keep printing as the log grows (until Ctrl-C)");
  return addRemoteOption(cmd).action(
    async (id: string, flags: { follow?: boolean } & RemoteFlags) => {
      const onNode = await resolvedRemote(flags);
      if (!onNode) getRecord(id);
      const path = logPath(id);
      const copy = (from: number) =>
        onNode ? copyRemote(id, onNode, from) : Promise.resolve(copyFrom(path, from));
      let offset = await copy(0);
      if (!flags.follow) return;
      let stop = false;
      const onSignal = () => (stop = true);
      process.once("SIGINT", onSignal);
      process.once("SIGTERM", onSignal);
      // Until Ctrl-C, or until the reader of our output goes away (`log -f ID | head`).
      while (!stop && !outputFailed()) {
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
        offset = await copy(offset);
      }
    },
  );
}
