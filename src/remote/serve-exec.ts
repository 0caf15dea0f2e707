/** Serves one `exec` operation: a guest command's stdio relayed over the connection. */
import type { Readable } from "node:stream";
import type { OperationStream } from "./operation-stream.js";
import type { ExecProcess, SandboxApi } from "../sandbox/index.js";
import { signalNumber } from "../sandbox/index.js";
import {
  encodeJson,
  encodeMessage,
  Msg,
  parseJson,
  wireError,
  type Message,
  type OperationRequest,
} from "./protocol.js";

/**
 * Guest output goes out as it comes, and a slow client pauses the guest stream (which stops
 * credits, which stops the guest process): memory per connection stays bounded.
 */
export function relayOutput(source: Readable, stream: OperationStream, type: Msg): Promise<void> {
  return new Promise((resolve) => {
    source.on("data", (chunk: Buffer) => {
      if (!stream.write(encodeMessage(type, chunk))) {
        source.pause();
        stream.once("drain", () => source.resume());
      }
    });
    source.once("end", resolve);
    source.once("error", () => resolve());
    source.once("close", resolve);
  });
}

export function serveExec(
  api: SandboxApi,
  stream: OperationStream,
  req: Extract<OperationRequest, { op: "exec" }>,
  track: (proc: ExecProcess) => () => void,
): (msg: Message) => void {
  const proc = api.spawn(req.argv, {
    ...(req.cwd !== undefined ? { cwd: req.cwd } : {}),
    ...(req.user !== undefined ? { user: req.user } : {}),
    ...(req.env !== undefined ? { env: req.env } : {}),
    ...(req.tty !== undefined ? { tty: req.tty } : {}),
  });
  const untrack = track(proc);
  let finished = false;
  const started = Promise.all([proc.pid, proc.execId]);
  // A failed start is reported by the exit promise.
  started.catch(() => undefined);
  // A client that asked for the pid with the exit is sent one message fewer.
  if (req.pidWithExit !== true)
    started.then(
      ([pid, execId]) => stream.write(encodeJson(Msg.Started, { pid, execId })),
      () => undefined,
    );
  const outputs = Promise.all([
    relayOutput(proc.stdout, stream, Msg.Stdout),
    relayOutput(proc.stderr, stream, Msg.Stderr),
  ]);
  const exitMessage = async (): Promise<Buffer> => {
    const [exit] = await Promise.all([proc.wait(), outputs]);
    const signal = exit.signal !== undefined ? signalNumber(exit.signal) : 0;
    const exitCode = signal > 0 ? -1 : exit.exitCode;
    if (req.pidWithExit !== true) return encodeJson(Msg.Exit, { exitCode, signal });
    const [pid, execId] = await started;
    return encodeJson(Msg.Exit, { exitCode, signal, pid, execId });
  };
  void exitMessage().then(
    (message) => {
      finished = true;
      untrack();
      stream.end(message);
    },
    (err: unknown) => {
      finished = true;
      untrack();
      stream.end(encodeJson(Msg.Error, wireError(err)));
    },
  );
  // A client that goes away (closed terminal, SIGKILLed CLI) must not leave the command behind.
  stream.once("close", () => {
    if (!finished) proc.abandon();
  });
  return (msg) => {
    switch (msg.type) {
      case Msg.Stdin:
        if (msg.payload.length === 0) proc.stdin.end();
        else if (!proc.stdin.writableEnded && !proc.stdin.write(msg.payload)) {
          stream.pause();
          proc.stdin.once("drain", () => stream.resume());
        }
        return;
      case Msg.Resize: {
        const { rows, cols } = parseJson<{ rows: number; cols: number }>(msg.payload);
        proc.resize(rows, cols);
        return;
      }
      case Msg.Signal:
        proc.kill(parseJson<{ signal: number }>(msg.payload).signal);
        return;
    }
  };
}
