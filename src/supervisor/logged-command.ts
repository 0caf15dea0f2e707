/**
 * The command a long-lived `run` was given: its output appended to the sandbox log, a ring
 * shared with the serial console (util/ring-log.ts), so neither can fill the host disk.
 */
import { once } from "node:events";
import type { SandboxApi } from "../sandbox/index.js";
import { openRingLog } from "../util/index.js";

export interface EchoStreams {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

export async function runLogged(
  sandbox: SandboxApi,
  command: string[],
  path: string,
  echo: EchoStreams | undefined,
): Promise<void> {
  const log = openRingLog(path);
  try {
    const proc = sandbox.spawn(command);
    proc.stdin.end();
    for await (const chunk of proc) {
      echo?.[chunk.stream].write(chunk.data);
      // Read no further until the log has taken this: a guest that writes faster than the
      // disk is slowed through the channel's flow control, never buffered here.
      if (!log.write(chunk.data)) await once(log, "drain");
    }
    const exit = await proc.wait();
    log.write(`wheellock: command exited with status ${exit.exitCode}\n`);
  } catch (err) {
    log.write(`wheellock: command failed: ${(err as Error).message}\n`);
  } finally {
    log.end();
  }
}
