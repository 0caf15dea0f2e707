// A SandboxHost of FakeSandboxes for unit tests of `serve`: each sandbox is served on a unix
// socket by the real protocol server, and operations are relayed to it as a node relays them
// to a supervisor (src/serve/relay.ts), so the data plane is tested end to end with no VM.
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import type { SandboxOptions } from "../../src/config/index.js";
import { ErrCapacity, ErrVMNotFound, ErrVMNotRunning } from "../../src/errors.js";
import type { SandboxUsage } from "../../src/observe/index.js";
import { RemoteSandbox, serveConnection } from "../../src/remote/index.js";
import type { HostedSandbox, PreparedOperation, SandboxHost } from "../../src/serve/index.js";
import { readRingLog, type LogCursor } from "../../src/serve/log-slice.js";
import { prepareRelay } from "../../src/serve/relay.js";
import { unixConnector } from "../../src/supervisor/index.js";
import { newSandboxId } from "../../src/util/index.js";
import { FakeSandbox } from "./fake-sandbox.js";

interface Entry {
  sandbox: FakeSandbox;
  server: Server;
  socketPath: string;
  hosted: HostedSandbox;
}

/** A running fake sandbox as a node lists it. */
export function fakeHosted(id: string): HostedSandbox {
  return {
    id,
    createdAt: new Date().toISOString(),
    status: "running",
    image: "fake",
    vcpus: 1,
    memoryMb: 256,
    config: {} as HostedSandbox["config"],
  };
}

export class FakeHost implements SandboxHost {
  readonly entries = new Map<string, Entry>();
  /** How long `create` takes (a VM boot answers only once the VM is up). */
  createDelayMs = 0;
  /** Sees the options as the node passes them on (what a supervisor would plan from). */
  onCreate: ((options: SandboxOptions) => Promise<void> | void) | undefined;

  constructor(
    private readonly socketDir: string,
    private readonly maxSandboxes = 8,
  ) {}

  async create(options: SandboxOptions = {}): Promise<HostedSandbox> {
    if (this.entries.size >= this.maxSandboxes) throw new ErrCapacity("fake host is full");
    await this.onCreate?.(options);
    await new Promise((resolve) => setTimeout(resolve, this.createDelayMs));
    const id = newSandboxId();
    const sandbox = new FakeSandbox(id);
    const socketPath = join(this.socketDir, `${id}.sock`);
    const server = createServer((socket) => serveConnection(sandbox, socket));
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    const hosted = fakeHosted(id);
    this.entries.set(id, { sandbox, server, socketPath, hosted });
    return hosted;
  }

  list(): HostedSandbox[] {
    return [...this.entries.values()].map((e) => e.hosted);
  }

  find(id: string): HostedSandbox | undefined {
    return this.entries.get(id)?.hosted;
  }

  sandbox(id: string): FakeSandbox {
    const entry = this.entries.get(id.split("@")[0] ?? "");
    if (!entry) throw new ErrVMNotFound(id);
    return entry.sandbox;
  }

  prepareOperation(id: string): PreparedOperation {
    const entry = this.entries.get(id);
    if (!entry) return { serve: (stream) => void stream.destroy() };
    return prepareRelay(unixConnector(entry.socketPath, id));
  }

  /** Each sandbox's ring log (`<id>.log`, `<id>.log.1`) is read as a supervised one's. */
  logPath(id: string): string {
    return join(this.socketDir, `${id}.log`);
  }

  readLog(id: string, cursor: LogCursor, maxBytes: number): { data: Buffer; cursor: LogCursor } {
    return readRingLog(this.logPath(id), cursor, maxBytes);
  }

  /** Asked through the relay, as a supervised sandbox's is through its control socket. */
  async usage(id: string): Promise<SandboxUsage | undefined> {
    const entry = this.entries.get(id);
    return entry?.hosted.status === "running"
      ? new RemoteSandbox(id, unixConnector(entry.socketPath, id)).usage()
      : undefined;
  }

  /** Stops the sandbox; it stays listed as stopped until `remove`. */
  async stop(id: string): Promise<void> {
    const entry = this.entries.get(id);
    if (!entry) throw new ErrVMNotFound(id);
    if (entry.hosted.status !== "running")
      throw new ErrVMNotRunning(`sandbox ${id} is not running`);
    entry.hosted = { ...entry.hosted, status: "stopped" };
    await entry.sandbox.close();
    entry.server.close();
  }

  async remove(id: string): Promise<void> {
    const entry = this.entries.get(id);
    if (!entry) throw new ErrVMNotFound(id);
    this.entries.delete(id);
    await entry.sandbox.close();
    entry.server.close();
  }

  async close(): Promise<void> {
    for (const id of [...this.entries.keys()]) await this.remove(id);
  }
}
