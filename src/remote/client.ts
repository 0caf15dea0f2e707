/**
 * `SandboxApi` over the operation protocol: a sandbox that runs in another process (a
 * supervisor) or on another machine (`serve`). Every call opens one connection through the
 * connector it was given, so the same class serves every transport.
 */
import { Readable } from "node:stream";
import { planConfigure, type ConfigureOptions } from "../config/index.js";
import { ErrVMNotRunning, WheellockError } from "../errors.js";
import type { ApprovalDecision, BlockedRequest, SandboxUsage } from "../observe/index.js";
import {
  commandArgv,
  ExecProcess,
  runCollected,
  type AllowlistState,
  type CheckpointInfo,
  type ExecOptions,
  type ExecResult,
  type FileData,
  type FileInfo,
  type MkdirOptions,
  type PortConnection,
  type RemoveOptions,
  type SandboxApi,
  type SandboxEvent,
  type SpawnOptions,
  type StatOptions,
  type WriteFileOptions,
} from "../sandbox/index.js";
import { openOperation, requestResult, type Connector } from "./client-conn.js";
import { remoteExec } from "./client-exec.js";
import { remoteEvents, remotePort } from "./client-streams.js";
import {
  encodeMessage,
  errorFromWire,
  Msg,
  parseJson,
  writeData,
  type OperationRequest,
  type WireError,
} from "./protocol.js";

type FileInfoJson = Omit<FileInfo, "mtime"> & { mtime: string };

function reviveInfo(info: FileInfoJson): FileInfo {
  return { ...info, mtime: new Date(info.mtime) };
}

export class RemoteSandbox implements SandboxApi {
  private closing: Promise<void> | undefined;

  constructor(
    readonly id: string,
    private readonly connect: Connector,
  ) {}

  spawn(command: string | readonly string[], options: SpawnOptions = {}): ExecProcess {
    return this.start(command, options, false);
  }

  async exec(command: string | readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    // exec() hands out no pid before the exit: the server need not send it apart.
    return runCollected(this.start(command, options, true), options);
  }

  private start(
    command: string | readonly string[],
    options: SpawnOptions,
    pidWithExit: boolean,
  ): ExecProcess {
    const tty = options.tty === true ? { rows: 24, cols: 80 } : options.tty || undefined;
    const stream = remoteExec(this.connect, this.id, {
      op: "exec",
      argv: commandArgv(command),
      ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
      ...(options.user !== undefined ? { user: options.user } : {}),
      ...(options.env !== undefined ? { env: options.env } : {}),
      ...(tty !== undefined ? { tty } : {}),
      ...(pidWithExit ? { pidWithExit } : {}),
    });
    return new ExecProcess(stream, Date.now(), () => undefined);
  }

  async writeFile(path: string, data: FileData, options: WriteFileOptions = {}): Promise<void> {
    const req: OperationRequest = { op: "write-file", path, ...options };
    let settle: { resolve: () => void; reject: (e: Error) => void } | undefined;
    const done = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    const conn = await openOperation(this.connect, req, (msg) => {
      if (msg.type === Msg.Result) settle?.resolve();
      else if (msg.type === Msg.Error)
        settle?.reject(errorFromWire(parseJson<WireError>(msg.payload), path));
    });
    conn.once("close", () => settle?.reject(this.lost()));
    // The server may refuse (a read-only path) while the upload is still running: stop
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
        if (bytes.length > 0) await writeData(conn, Msg.Stdin, bytes);
      }
      if (!answered) conn.write(encodeMessage(Msg.Stdin));
      await done;
    } finally {
      conn.destroy();
    }
  }

  readFileStream(path: string): Readable {
    let answered = false;
    const opened = openOperation(this.connect, { op: "read-file", path }, (msg) => {
      if (msg.type === Msg.Stdout) {
        if (!out.push(msg.payload)) void opened.then((c) => c.pause());
      } else if (msg.type === Msg.Result) {
        answered = true;
        out.push(null);
      } else if (msg.type === Msg.Error) {
        answered = true;
        out.destroy(errorFromWire(parseJson<WireError>(msg.payload), path));
      }
    });
    const out = new Readable({
      read: () => {
        opened.then(
          (c) => c.resume(),
          () => undefined,
        );
      },
    });
    opened.then(
      (c) => {
        // The reader may still be draining data that has all arrived: only a missing answer
        // means the connection was lost.
        c.once("close", () => answered || out.destroy(this.lost()));
        out.once("close", () => c.destroy());
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
    const list = await this.request<FileInfoJson[]>({ op: "list-files", path }, path);
    return list.map(reviveInfo);
  }

  async stat(path: string, options: StatOptions = {}): Promise<FileInfo> {
    return reviveInfo(await this.request<FileInfoJson>({ op: "stat", path, ...options }, path));
  }

  async mkdir(path: string, options: MkdirOptions = {}): Promise<void> {
    await this.request({ op: "mkdir", path, ...options }, path);
  }

  async remove(path: string, options: RemoveOptions = {}): Promise<void> {
    await this.request({ op: "remove", path, ...options }, path);
  }

  openPort(port: number): PortConnection {
    return remotePort(this.connect, this.id, port);
  }

  async allowHosts(...hosts: string[]): Promise<string[]> {
    const result = await this.request<{ changed: string[] }>({
      op: "allow-list",
      action: "add",
      hosts,
    });
    return result.changed;
  }

  async disallowHosts(...hosts: string[]): Promise<string[]> {
    const result = await this.request<{ changed: string[] }>({
      op: "allow-list",
      action: "delete",
      hosts,
    });
    return result.changed;
  }

  checkpoint(name?: string): Promise<CheckpointInfo> {
    return this.request<CheckpointInfo>({
      op: "checkpoint",
      ...(name !== undefined ? { name } : {}),
    });
  }

  allowedHosts(): Promise<AllowlistState> {
    return this.request<AllowlistState>({ op: "allowed-hosts" });
  }

  async pendingRequests(): Promise<BlockedRequest[]> {
    return (await this.request<{ requests: BlockedRequest[] }>({ op: "pending-requests" }))
      .requests;
  }

  async decideRequest(requestId: number, decision: ApprovalDecision): Promise<void> {
    await this.request({ op: "decide-request", requestId, decision });
  }

  usage(): Promise<SandboxUsage> {
    return this.request<SandboxUsage>({ op: "usage" });
  }

  async configure(options: ConfigureOptions): Promise<void> {
    // Checked here too, so a bad option fails before its secret values travel anywhere.
    planConfigure(options);
    await this.request({ op: "configure", options });
  }

  events(): AsyncIterableIterator<SandboxEvent> {
    return remoteEvents(this.connect);
  }

  /**
   * Stops the sandbox (gracefully, as `wheellock kill` does) and resolves once it has
   * stopped. Closing a sandbox that has already stopped is fine.
   */
  close(): Promise<void> {
    this.closing ??= this.request({ op: "stop" }).then(
      () => undefined,
      (err: unknown) => {
        if (err instanceof ErrVMNotRunning) return;
        throw err;
      },
    );
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private request<T>(req: OperationRequest, path?: string): Promise<T> {
    return requestResult<T>(this.connect, this.id, req, path);
  }

  private lost(): WheellockError {
    return new ErrVMNotRunning(`sandbox ${this.id}: the connection to it was lost`);
  }
}
