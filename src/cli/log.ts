import { Command } from "commander";
import { closeSync, fstatSync, openSync, readSync, statSync } from "node:fs";
import { getRecord, logPath } from "../state/index.js";
import { previousSegmentPath, TerminalSanitizer } from "../util/index.js";
import { outputFailed } from "./output.js";
import { addRemoteOption, resolvedRemote, type RemoteFlags } from "./remote-flags.js";

const POLL_MS = 100;

/** Where log bytes go: stdout as they are (`--raw`), or cleaned of terminal controls. */
function logOutput(raw: boolean): (chunk: Buffer) => void {
  if (raw) return (chunk) => process.stdout.write(chunk);
  const sanitizer = new TerminalSanitizer();
  return (chunk) => {
    const text = sanitizer.push(chunk);
    if (text) process.stdout.write(text);
  };
}

function openOrUndefined(path: string): number | undefined {
  try {
    return openSync(path, "r");
  } catch {
    return undefined; // not written yet
  }
}

/**
 * Reads the sandbox log (a ring: `vm.log.1` then `vm.log`, util/ring-log.ts) and, following,
 * keeps reading as it grows and across rotations: the file it holds open is read to its end
 * before it moves on to the new `vm.log`.
 */
class LogReader {
  private fd: number | undefined;
  private offset = 0;

  constructor(
    private readonly path: string,
    private readonly out: (chunk: Buffer) => void,
  ) {}

  /** Prints what is there now, older segment first. */
  printExisting(): void {
    // The current segment first: if it rotates meanwhile, the "previous" one opened next is
    // that same file, printed once.
    this.fd = openOrUndefined(this.path);
    const previous = openOrUndefined(previousSegmentPath(this.path));
    if (previous !== undefined) {
      const sameFile = this.fd !== undefined && fstatSync(this.fd).ino === fstatSync(previous).ino;
      if (!sameFile) this.drain(previous, 0);
      closeSync(previous);
    }
    if (this.fd !== undefined) this.offset = this.drain(this.fd, 0);
  }

  /** Prints what was appended since, following a rotation to the new segment. */
  poll(): void {
    if (this.fd !== undefined) this.offset = this.drain(this.fd, this.offset);
    let currentIno: number | undefined;
    try {
      currentIno = statSync(this.path).ino;
    } catch {
      return; // between the rename and the new file
    }
    if (this.fd !== undefined && currentIno === fstatSync(this.fd).ino) return;
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = openOrUndefined(this.path);
    this.offset = this.fd !== undefined ? this.drain(this.fd, 0) : 0;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private drain(fd: number, from: number): number {
    const buf = Buffer.allocUnsafe(64 * 1024);
    let offset = from;
    while (!outputFailed()) {
      const n = readSync(fd, buf, 0, buf.length, offset);
      if (n <= 0) break;
      this.out(Buffer.from(buf.subarray(0, n)));
      offset += n;
    }
    return offset;
  }
}

/** The same from a node: one slice per call, from where the last one ended. */
async function copyRemote(
  id: string,
  onNode: OnNode,
  offset: number,
  out: (chunk: Buffer) => void,
): Promise<number> {
  for (;;) {
    const { data, size } = await onNode.sdk.readRemoteLog(id, onNode.remote, offset);
    if (size < offset) return 0;
    if (data.length === 0 || outputFailed()) return offset;
    out(data);
    offset += data.length;
  }
}

/** `log --remote`: the node's log of the sandbox, followed by polling with `-f`. */
async function followRemote(
  id: string,
  onNode: OnNode,
  follow: boolean,
  out: (chunk: Buffer) => void,
): Promise<void> {
  let offset = await copyRemote(id, onNode, 0, out);
  let stop = !follow;
  const onSignal = () => (stop = true);
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  while (!stop && !outputFailed()) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    offset = await copyRemote(id, onNode, offset, out);
  }
}

type OnNode = NonNullable<Awaited<ReturnType<typeof resolvedRemote>>>;

export function logCommand(): Command {
  const cmd = new Command("log")
    .argument("<id>", "sandbox id")
    .option("-f, --follow", "keep printing as the log grows (until Ctrl-C)")
    .option(
      "--raw",
      "print the bytes as the guest wrote them; by default terminal escape sequences and " +
        "control characters other than newline and tab are removed, on a terminal or not",
    );
  return addRemoteOption(cmd).action(
    async (id: string, flags: { follow?: boolean; raw?: boolean } & RemoteFlags) => {
      const out = logOutput(flags.raw === true);
      const onNode = await resolvedRemote(flags);
      if (onNode) return followRemote(id, onNode, flags.follow === true, out);
      getRecord(id);
      const reader = new LogReader(logPath(id), out);
      try {
        reader.printExisting();
        if (!flags.follow) return;
        let stop = false;
        const onSignal = () => (stop = true);
        process.once("SIGINT", onSignal);
        process.once("SIGTERM", onSignal);
        // Until Ctrl-C, or until the reader of our output goes away (`log -f ID | head`).
        while (!stop && !outputFailed()) {
          await new Promise((resolve) => setTimeout(resolve, POLL_MS));
          reader.poll();
        }
      } finally {
        reader.close();
      }
    },
  );
}
