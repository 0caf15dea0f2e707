// A SandboxApi with no VM behind it, for testing what carries the API (the remote protocol,
// `serve`'s routes, auth and data plane) in unit tests. Commands: `echo ARGS...`, `exit N`,
// `cat` (stdin to stdout), `yes` (endless output that only advances as it is read: `produced`
// counts what the "guest" made), `printenv NAME`.
import { PassThrough, Readable, Writable } from "node:stream";
import { ErrFile, ErrVMNotRunning } from "../../src/errors.js";
import {
  ExecProcess,
  type CheckpointInfo,
  type ConfigureOptions,
  type ExecOptions,
  type ExecResult,
  type FileData,
  type FileInfo,
  type PortConnection,
  type SandboxApi,
  type SandboxEvent,
} from "../../src/index.js";
import { commandArgv, runCollected } from "../../src/sandbox/index.js";
import { FakeEgress } from "./fake-egress.js";

export class FakeSandbox extends FakeEgress implements SandboxApi {
  /** Bytes `yes` has produced so far (what a guest would have written). */
  produced = 0;
  readonly files = new Map<string, Buffer>();
  readonly configured: ConfigureOptions[] = [];
  readonly checkpoints: Array<string | undefined> = [];
  private env: Record<string, string> = {};
  closed = false;

  constructor(readonly id: string) {
    super();
  }

  spawn(command: string | readonly string[]): ExecProcess {
    if (this.closed) throw new ErrVMNotRunning(`sandbox ${this.id} is closed`);
    const argv = commandArgv(command);
    this.meter.execStarted();
    const argsOf =
      /(^|\/)sh$/.test(argv[0] ?? "") && argv[1] === "-c" ? (argv[2] ?? "").split(" ") : argv;
    const [name, ...args] = argsOf;
    const stderr = new PassThrough();
    let finish: (code: number, signal?: number) => void = () => undefined;
    const exit = new Promise<{ exitCode: number; signal: number; durationMs: number }>(
      (resolve) =>
        (finish = (code, signal = 0) => resolve({ exitCode: code, signal, durationMs: 0 })),
    );
    let stdout: Readable;
    let stdin: Writable = new Writable({ write: (_c, _e, done) => done() });
    if (name === "yes") {
      const chunk = Buffer.alloc(64 * 1024, "y");
      stdout = new Readable({
        highWaterMark: 64 * 1024,
        read: () => {
          this.produced += chunk.length;
          stdout.push(chunk);
        },
      });
    } else if (name === "cat") {
      const out = new PassThrough();
      stdout = out;
      stdin = new Writable({
        write: (chunk: Buffer, _e, done) => (out.write(chunk) ? done() : out.once("drain", done)),
        final: (done) => {
          out.end();
          done();
        },
      });
      out.once("end", () => finish(0));
    } else {
      const text =
        name === "echo"
          ? `${args.join(" ")}\n`
          : name === "printenv"
            ? `${this.env[args[0] ?? ""] ?? ""}\n`
            : "";
      stdout = Readable.from([Buffer.from(text)]);
      stdout.once("end", () => finish(name === "exit" ? Number(args[0] ?? 0) : 0));
    }
    stdout.once("end", () => stderr.end());
    return new ExecProcess(
      {
        started: Promise.resolve(42),
        execId: Promise.resolve(1),
        stdout,
        stderr,
        stdin,
        exit,
        signal: (signo) => {
          stdout.destroy();
          stderr.end();
          finish(0, signo);
        },
        resize: () => undefined,
        close: () => {
          stdout.destroy();
          finish(0, 9);
        },
      },
      Date.now(),
      () => undefined,
    );
  }

  exec(command: string | readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    return runCollected(this.spawn(command), options);
  }

  async readFile(path: string): Promise<Buffer> {
    const data = this.files.get(path);
    if (!data) throw new ErrFile(path, "no such file", "ENOENT");
    return data;
  }

  readFileStream(path: string): Readable {
    const data = this.files.get(path);
    if (!data) {
      const r = new Readable({ read: () => undefined });
      process.nextTick(() => r.destroy(new ErrFile(path, "no such file", "ENOENT")));
      return r;
    }
    return Readable.from([data]);
  }

  async writeFile(path: string, data: FileData): Promise<void> {
    const chunks: Buffer[] = [];
    const source = typeof data === "string" || data instanceof Uint8Array ? [data] : data;
    for await (const c of source as AsyncIterable<Buffer | string>) chunks.push(Buffer.from(c));
    this.files.set(path, Buffer.concat(chunks));
  }

  async listFiles(): Promise<FileInfo[]> {
    return [];
  }

  async stat(path: string): Promise<FileInfo> {
    const data = await this.readFile(path);
    return {
      name: path.split("/").pop() ?? "",
      sizeBytes: data.length,
      mode: 0o100644,
      isDir: false,
      isSymlink: false,
      uid: 0,
      gid: 0,
      mtime: new Date(0),
    };
  }

  async mkdir(): Promise<void> {}

  async remove(path: string): Promise<void> {
    this.files.delete(path);
  }

  openPort(): PortConnection {
    const readable = new PassThrough();
    return {
      connected: Promise.resolve(),
      readable,
      writable: readable,
      done: new Promise((resolve) => readable.once("end", () => resolve())),
      close: () => readable.destroy(),
    };
  }

  async checkpoint(name?: string): Promise<CheckpointInfo> {
    this.checkpoints.push(name);
    return {
      name: name ?? "fake",
      createdAt: new Date(0).toISOString(),
      sourceSandboxId: this.id,
      sizes: {
        stateBytes: 1,
        upperDataBytes: 2,
        mountDataBytes: 0,
        diskDataBytes: 0,
        newBytes: 3,
        sharedBytes: 0,
      },
      pausedMs: 4,
      durationMs: 5,
    };
  }

  async configure(options: ConfigureOptions): Promise<void> {
    this.configured.push(options);
    this.env = { ...this.env, ...(options.env ?? {}) };
  }

  events(): AsyncIterableIterator<SandboxEvent> {
    return (async function* () {})();
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
