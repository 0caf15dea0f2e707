// A SandboxApi without a VM for the rpc wire tests: commands are a tiny scripted language (not
// a shell), files live in a map, guest ports are the host's own 127.0.0.1 ports.
import { connect } from "node:net";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { PassThrough, Readable } from "node:stream";
import type { ExecStream } from "../../src/channel/index.js";
import { ErrFile, ErrInvalidConfig, ErrVMNotRunning } from "../../src/errors.js";
import type { SandboxOptions } from "../../src/config/index.js";
import type { RpcSandbox, SandboxFactory } from "../../src/rpc/index.js";
import { FakeEgress } from "../helpers/fake-egress.js";
import {
  ExecProcess,
  type CheckpointInfo,
  type FileInfo,
  type PortConnection,
  type SandboxApi,
  type SandboxEvent,
  type SpawnOptions,
} from "../../src/sandbox/index.js";

export interface Spawned {
  command: string | readonly string[];
  options: SpawnOptions;
  proc: ExecProcess;
}

/**
 * Commands, `;`-separated: `echo TEXT`, `err TEXT`, `cat` (stdin to stdout until EOF),
 * `hang` (until killed), `sleep MS`, `bytes N` (N bytes of `x`), `cwd`, `user`, `tty`
 * (`ROWS COLS`, then resizes as `ROWSxCOLS`), `exit N`, `fail TEXT` (the command cannot start).
 */
function fakeExec(command: string, options: SpawnOptions): ExecStream {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let closed = false;
  let rejectExit: (err: Error) => void = () => undefined;
  let onResize: (rows: number, cols: number) => void = () => undefined;
  const exit = new Promise<{ exitCode: number; signal: number }>((resolve, reject) => {
    rejectExit = reject;
    void (async () => {
      for (const step of command.split(";").map((s) => s.trim())) {
        const [verb = "", ...rest] = step.split(" ");
        const arg = rest.join(" ");
        if (closed) return;
        if (verb === "echo") stdout.write(`${arg}\n`);
        else if (verb === "err") stderr.write(`${arg}\n`);
        else if (verb === "cwd") stdout.write(`${options.cwd ?? "-"}\n`);
        else if (verb === "user") stdout.write(`${options.user ?? "-"}\n`);
        else if (verb === "bytes") {
          // In 64 KiB chunks that wait for the reader, as the guest's credit window makes it.
          for (let left = Number(arg); left > 0 && !closed; left -= 65536) {
            if (!stdout.write(Buffer.alloc(Math.min(left, 65536), "x")))
              await new Promise((r) => stdout.once("drain", r));
          }
        } else if (verb === "sleep") await new Promise((r) => setTimeout(r, Number(arg)));
        else if (verb === "hang") await new Promise(() => undefined);
        else if (verb === "fail") return reject(new ErrFile("/", arg));
        else if (verb === "exit") return finish(Number(arg));
        else if (verb === "cat") {
          for await (const chunk of stdin) stdout.write(chunk as Buffer);
        } else if (verb === "tty") {
          const size = typeof options.tty === "object" ? options.tty : { rows: 24, cols: 80 };
          stdout.write(`${size.rows} ${size.cols}\n`);
          onResize = (rows, cols) => stdout.write(`${rows}x${cols}\n`);
          // Like a terminal in canonical mode: Ctrl-D is the end of input.
          for await (const chunk of stdin) {
            const eof = (chunk as Buffer).indexOf(4);
            stdout.write((chunk as Buffer).subarray(0, eof < 0 ? undefined : eof));
            if (eof >= 0) break;
          }
        }
      }
      finish(0);
    })();
    function finish(code: number): void {
      stdout.end();
      stderr.end();
      resolve({ exitCode: code, signal: 0 });
    }
  });
  exit.catch(() => undefined);
  return {
    started: Promise.resolve(1),
    execId: Promise.resolve(1),
    stdin,
    stdout,
    stderr,
    exit,
    signal: () => undefined,
    resize: (rows, cols) => onResize(rows, cols),
    close: () => {
      closed = true;
      rejectExit(new ErrVMNotRunning("command abandoned"));
      stdout.destroy();
      stderr.destroy();
    },
  };
}

interface Entry {
  data: Buffer;
  mode: number;
}

export class FakeSandbox extends FakeEgress implements SandboxApi {
  readonly id: string;
  readonly spawned: Spawned[] = [];
  readonly files = new Map<string, Entry>();
  readonly dirs = new Set<string>(["/", "/tmp", "/etc"]);
  closed = false;
  private readonly subscribers = new Set<(e: SandboxEvent | undefined) => void>();

  constructor(id = "vm-fake0001") {
    super();
    this.id = id;
  }

  protected override live(): void {
    if (this.closed) throw new ErrVMNotRunning(`sandbox ${this.id} is closed`);
  }

  exec(): never {
    throw new Error("the rpc server uses spawn");
  }

  spawn(command: string | readonly string[], options: SpawnOptions = {}): ExecProcess {
    this.live();
    const text = typeof command === "string" ? command : command.join(" ");
    const proc = new ExecProcess(fakeExec(text, options), Date.now(), () => undefined);
    this.spawned.push({ command, options, proc });
    return proc;
  }

  async readFile(path: string): Promise<Buffer> {
    const entry = this.files.get(path);
    if (!entry) throw new ErrFile(path, `open ${path}: no such file or directory`, "ENOENT");
    return entry.data;
  }

  readFileStream(path: string): Readable {
    return Readable.from(
      (async function* (sb: FakeSandbox) {
        const data = await sb.readFile(path);
        for (let i = 0; i < data.length; i += 65536) yield data.subarray(i, i + 65536);
      })(this),
    );
  }

  async writeFile(path: string, data: unknown, options: { mode?: number } = {}): Promise<void> {
    this.live();
    if (!this.dirs.has(posix.dirname(path)))
      throw new ErrFile(path, `open ${path}: no such file or directory`, "ENOENT");
    this.files.set(path, { data: Buffer.from(data as Buffer), mode: options.mode ?? 0o644 });
    this.emit({
      type: "file",
      timestamp: new Date(),
      file: {
        op: "write",
        path,
        size: Buffer.from(data as Buffer).length,
        mode: options.mode,
        origin: "api",
        errno: 0,
        blocked: false,
      },
    });
  }

  async listFiles(path: string): Promise<FileInfo[]> {
    if (!this.dirs.has(path))
      throw new ErrFile(path, `open ${path}: no such file or directory`, "ENOENT");
    const at = (p: string) => posix.dirname(p) === path && p !== path;
    const info = (name: string, isDir: boolean, mode: number, size: number): FileInfo => ({
      name,
      sizeBytes: size,
      mode,
      isDir,
      isSymlink: false,
      uid: 0,
      gid: 0,
      mtime: new Date(0),
    });
    return [
      ...[...this.files]
        .filter(([p]) => at(p))
        .map(([p, e]) => info(posix.basename(p), false, 0o100000 | e.mode, e.data.length)),
      ...[...this.dirs].filter(at).map((p) => info(posix.basename(p), true, 0o040755, 4096)),
    ];
  }

  async stat(): Promise<FileInfo> {
    throw new Error("not used");
  }

  async mkdir(path: string): Promise<void> {
    for (let p = path; p !== "/"; p = posix.dirname(p)) this.dirs.add(p);
  }

  async remove(): Promise<void> {}

  openPort(port: number): PortConnection {
    const socket = connect(port, "127.0.0.1");
    const connected = new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    connected.catch(() => undefined);
    const done = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    return { connected, readable: socket, writable: socket, done, close: () => socket.destroy() };
  }

  /** rpc never personalises a running sandbox; a call here is a bug in the server. */
  async configure(): Promise<void> {
    throw new ErrInvalidConfig("configure is not part of the rpc server's use");
  }

  async checkpoint(): Promise<CheckpointInfo> {
    throw new ErrInvalidConfig("checkpoint is not part of the rpc server's use");
  }

  emit(event: SandboxEvent): void {
    for (const fn of this.subscribers) fn(event);
  }

  events(): AsyncIterableIterator<SandboxEvent> {
    const queue: Array<SandboxEvent | undefined> = [];
    let wake: (() => void) | undefined;
    const push = (e: SandboxEvent | undefined) => {
      queue.push(e);
      wake?.();
    };
    this.subscribers.add(push);
    const subscribers = this.subscribers;
    const it: AsyncIterableIterator<SandboxEvent> = {
      async next() {
        for (;;) {
          if (queue.length > 0) {
            const e = queue.shift();
            return e === undefined ? { value: undefined, done: true } : { value: e, done: false };
          }
          await new Promise<void>((r) => (wake = r));
        }
      },
      async return() {
        subscribers.delete(push);
        queue.push(undefined);
        wake?.();
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]: () => it,
    };
    return it;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const fn of this.subscribers) fn(undefined);
    for (const s of this.spawned) s.proc.abandon();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

export interface FakeFactory {
  factory: SandboxFactory;
  created: FakeSandbox[];
  options: SandboxOptions[];
  /** How each sandbox ended, in order: `close`, `kill` or `discard`. */
  ends: string[];
  logDir: string;
}

/** A factory of FakeSandboxes; `image` is what the booted image says about itself. */
export function fakeFactory(image?: RpcSandbox["image"], bootMs = 0): FakeFactory {
  const logDir = mkdtempSync(join(tmpdir(), "wl-rpc-log-"));
  process.on("exit", () => rmSync(logDir, { recursive: true, force: true }));
  const out: FakeFactory = {
    factory: async () => undefined as never,
    created: [],
    options: [],
    ends: [],
    logDir,
  };
  out.factory = async (options) => {
    out.options.push(options);
    if (bootMs > 0) await new Promise((r) => setTimeout(r, bootMs));
    const sb = new FakeSandbox(`vm-fake000${out.created.length + 1}`);
    out.created.push(sb);
    const logPath = join(logDir, `${sb.id}.log`);
    writeFileSync(logPath, "console line 1\n");
    const end = (how: string) => async () => {
      out.ends.push(`${how} ${sb.id}`);
      await sb.close();
    };
    return {
      id: sb.id,
      api: sb,
      image,
      logPath,
      close: end("close"),
      kill: end("kill"),
      discard: end("discard"),
    };
  };
  return out;
}
