/**
 * The SDK's handle on a long-lived sandbox owned by another process (`wheellock run -d`):
 * the same exec and file methods as `Sandbox`, carried over the supervisor's control socket.
 */
import type { Socket } from "node:net";
import { join } from "node:path";
import { Readable } from "node:stream";
import { commandArgv } from "../sandbox/exec-env.js";
import { runCollected, type ExecOptions, type ExecResult } from "../sandbox/exec-collect.js";
// Direct imports, not sandbox/index.js: Sandbox.connect() imports this module.
import { ExecProcess } from "../sandbox/exec-process.js";
import type { FileInfo } from "../sandbox/files.js";
import type { SpawnOptions } from "../sandbox/sandbox.js";
import { ErrVMNotRunning } from "../errors.js";
import { runDir } from "../paths.js";
import { controlSocketPath, getRecord, type SandboxRecord } from "../state/index.js";
import { errorFromWire, openOperation, requestResult } from "./client-conn.js";
import { remoteExec } from "./remote-exec.js";
import { tunnelTcp } from "./remote-port.js";
import type { AllowListResult } from "./server.js";
import {
  encodeMessage,
  Msg,
  parseJson,
  writeData,
  type ControlRequest,
  type WireError,
} from "./wire.js";

type FileInfoJson = Omit<FileInfo, "mtime"> & { mtime: string };

function reviveInfo(info: FileInfoJson): FileInfo {
  return { ...info, mtime: new Date(info.mtime) };
}

export class RemoteSandbox {
  private constructor(
    readonly id: string,
    private readonly socketPath: string,
  ) {}

  /** Attaches to a running sandbox; ErrVMNotFound or ErrVMNotRunning otherwise. */
  static connect(id: string): RemoteSandbox {
    const record = getRecord(id);
    if (record.status !== "running") {
      throw new ErrVMNotRunning(`sandbox ${id} is not running (status: ${record.status})`);
    }
    return new RemoteSandbox(id, controlSocketPath(join(runDir(), id)));
  }

  /** The sandbox's record, reconciled now. */
  info(): SandboxRecord {
    return getRecord(this.id);
  }

  spawn(command: string | readonly string[], options: SpawnOptions = {}): ExecProcess {
    const tty = options.tty === true ? { rows: 24, cols: 80 } : options.tty || undefined;
    const stream = remoteExec(this.socketPath, this.id, {
      op: "exec",
      argv: commandArgv(command),
      ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
      ...(options.user !== undefined ? { user: options.user } : {}),
      ...(options.env !== undefined ? { env: options.env } : {}),
      ...(tty !== undefined ? { tty } : {}),
    });
    return new ExecProcess(stream, Date.now(), () => undefined);
  }

  exec(command: string | readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    return runCollected(this.spawn(command, options), options);
  }

  async writeFile(
    path: string,
    data: string | Uint8Array | Readable | AsyncIterable<Uint8Array>,
    options: { mode?: number } = {},
  ): Promise<void> {
    const req: ControlRequest = { op: "write-file", path, ...options };
    let settle: { resolve: () => void; reject: (e: Error) => void } | undefined;
    const done = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    const socket = await openOperation(this.socketPath, this.id, req, (msg) => {
      if (msg.type === Msg.Result) settle?.resolve();
      else if (msg.type === Msg.Error)
        settle?.reject(errorFromWire(parseJson<WireError>(msg.payload), path));
    });
    socket.once("close", () =>
      settle?.reject(new ErrVMNotRunning(`sandbox ${this.id}: connection lost`)),
    );
    // The supervisor may refuse (a read-only path) while the upload is still running: stop
    // sending then, and keep that rejection handled until it is awaited below.
    let answered = false;
    done.then(
      () => (answered = true),
      () => (answered = true),
    );
    try {
      const source =
        typeof data === "string" || data instanceof Uint8Array ? [Buffer.from(data)] : data;
      for await (const chunk of source) {
        if (answered) break;
        const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
        if (bytes.length > 0) await writeData(socket, Msg.Stdin, bytes);
      }
      if (!answered) socket.write(encodeMessage(Msg.Stdin));
      await done;
    } finally {
      socket.destroy();
    }
  }

  /** Streams a guest file; guest errors arrive as the stream's error. */
  readFileStream(path: string): Readable {
    let answered = false;
    const out = new Readable({
      read: () =>
        socketPromise.then(
          (s) => s.resume(),
          () => undefined,
        ),
    });
    const socketPromise = openOperation(
      this.socketPath,
      this.id,
      { op: "read-file", path },
      (msg) => {
        if (msg.type === Msg.Stdout) {
          if (!out.push(msg.payload)) void socketPromise.then((s) => s.pause());
        } else if (msg.type === Msg.Result) {
          answered = true;
          out.push(null);
        } else if (msg.type === Msg.Error) {
          answered = true;
          out.destroy(errorFromWire(parseJson<WireError>(msg.payload), path));
        }
      },
    );
    socketPromise.then(
      (s) => {
        s.once("close", () => {
          // The reader may still be draining data that has all arrived: only a missing
          // answer means the connection was lost.
          if (!answered) out.destroy(new ErrVMNotRunning(`sandbox ${this.id}: connection lost`));
        });
        out.once("close", () => s.destroy());
      },
      (err: Error) => out.destroy(err),
    );
    return out;
  }

  async readFile(path: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of this.readFileStream(path)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  async listFiles(path: string): Promise<FileInfo[]> {
    const list = await requestResult<FileInfoJson[]>(
      this.socketPath,
      this.id,
      { op: "list-files", path },
      path,
    );
    return list.map(reviveInfo);
  }

  async stat(path: string, options: { followSymlinks?: boolean } = {}): Promise<FileInfo> {
    return reviveInfo(
      await requestResult<FileInfoJson>(
        this.socketPath,
        this.id,
        { op: "stat", path, ...options },
        path,
      ),
    );
  }

  async mkdir(path: string, options: { mode?: number } = {}): Promise<void> {
    await requestResult(this.socketPath, this.id, { op: "mkdir", path, ...options }, path);
  }

  async remove(path: string, options: { recursive?: boolean } = {}): Promise<void> {
    await requestResult(this.socketPath, this.id, { op: "remove", path, ...options }, path);
  }

  /** Tunnels a host TCP connection to guest 127.0.0.1:`port` (what `port-forward` does). */
  tunnelTcp(port: number, client: Socket, onError: (err: Error) => void = () => undefined): void {
    tunnelTcp(this.socketPath, this.id, port, client, onError);
  }

  /** Adds hosts to (or deletes them from) the sandbox's network allow-list. */
  allowList(action: "add" | "delete", hosts: string[]): Promise<AllowListResult> {
    return requestResult<AllowListResult>(this.socketPath, this.id, {
      op: "allow-list",
      action,
      hosts,
    });
  }

  /** Asks the supervisor to stop the sandbox (graceful, like `wheellock kill`). */
  async stop(): Promise<void> {
    await requestResult(this.socketPath, this.id, { op: "stop" });
  }
}
