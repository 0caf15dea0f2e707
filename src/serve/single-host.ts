/**
 * `serve --single`: one sandbox, in this process, started from the options given at start-up
 * and served until it stops (then `serve` exits): the pod-per-sandbox form, where the pod's
 * life is the sandbox's. There is nothing to create; DELETE or the `stop` operation ends it.
 */
import { Duplex, PassThrough, type Readable } from "node:stream";
import { availableParallelism } from "node:os";
import { planSandbox, type SandboxOptions } from "../config/index.js";
import { ErrVMNotFound, ErrVMNotRunning } from "../errors.js";
import { serveConnection } from "../remote/index.js";
import {
  launchVmSandbox,
  type ExecProcess,
  type SandboxApi,
  type VmSandbox,
} from "../sandbox/index.js";
import type { SandboxUsage } from "../observe/index.js";
import { settledWithin } from "../util/index.js";
import type { HostedSandbox, PreparedOperation, SandboxHost } from "./host.js";
import { HttpError } from "./http-json.js";
import { GatedInput } from "./request-gate.js";
import type { LogCursor } from "./log-slice.js";

/** What `serve --single` needs of its sandbox (a VmSandbox; a fake in unit tests). */
export type InProcessSandbox = SandboxApi &
  Pick<VmSandbox, "config" | "accel" | "running" | "onAllowlistChange">;

export class SingleHost implements SandboxHost {
  private readonly procs = new Set<ExecProcess>();
  private stoppedReason: string | undefined;
  /** The final figures (the sandbox's last `usage` event), once it stopped. */
  private finalUsage: SandboxUsage | undefined;
  private stopped = false;
  /** The allowlist as it is now (`allow-list add`, approvals), once it changed. */
  private liveAllowlist: { hosts: string[]; approved: string[] } | undefined;
  readonly ended: Promise<void>;

  /** @internal Use `start` (tests wrap a fake sandbox). */
  constructor(
    private readonly sandbox: InProcessSandbox,
    private readonly createdAt: string,
  ) {
    sandbox.onAllowlistChange((hosts, approved) => (this.liveAllowlist = { hosts, approved }));
    this.ended = (async () => {
      for await (const event of sandbox.events()) {
        if (event.type === "usage") this.finalUsage = event.usage;
        if (event.type === "lifecycle" && event.lifecycle.state === "stopped") {
          this.stoppedReason = event.lifecycle.reason;
          break;
        }
      }
      this.stopped = true;
    })();
  }

  /** Boots the sandbox (its options checked with this node's defaults). */
  static async start(options: SandboxOptions): Promise<SingleHost> {
    const plan = planSandbox(options, process.env, availableParallelism());
    const createdAt = new Date().toISOString();
    return new SingleHost(await launchVmSandbox(plan), createdAt);
  }

  get id(): string {
    return this.sandbox.id;
  }

  create(): Promise<HostedSandbox> {
    return Promise.reject(
      new HttpError(405, "ErrInvalidConfig", "this node serves one sandbox (--single)"),
    );
  }

  list(): HostedSandbox[] {
    return [this.view()];
  }

  find(id: string): HostedSandbox | undefined {
    return id === this.sandbox.id ? this.view() : undefined;
  }

  prepareOperation(id: string): PreparedOperation {
    return {
      // The sandbox is in this process: nothing was opened ahead.
      serve: (stream: Duplex, input: Readable) => {
        if (id !== this.sandbox.id) return void stream.destroy();
        // The sandbox's messages pass through `out`, so the gate sees where operations end.
        const out = new PassThrough();
        out.pipe(stream);
        if (input instanceof GatedInput) input.watchServer(out);
        const conn = Duplex.from({ readable: input, writable: out });
        stream.once("close", () => conn.destroy());
        conn.once("close", () => stream.destroy());
        serveConnection(this.sandbox, conn, {
          trackExec: (proc) => {
            this.procs.add(proc);
            return () => this.procs.delete(proc);
          },
        });
      },
    };
  }

  readLog(_id: string, cursor: LogCursor): { data: Buffer; cursor: LogCursor } {
    // The console of an in-process sandbox is not kept (a pod's log is `serve`'s stderr).
    return { data: Buffer.alloc(0), cursor };
  }

  async usage(id: string, timeoutMs: number): Promise<SandboxUsage | undefined> {
    if (id !== this.sandbox.id) return undefined;
    if (!this.sandbox.running) return this.finalUsage;
    return settledWithin(this.sandbox.usage(), timeoutMs);
  }

  async stop(id: string): Promise<void> {
    if (id !== this.sandbox.id) throw new ErrVMNotFound(id);
    if (!this.sandbox.running) throw new ErrVMNotRunning(`sandbox ${id} is not running`);
    // The node's life is the sandbox's: it exits once this has stopped.
    await this.sandbox.close();
  }

  async remove(id: string): Promise<void> {
    if (id !== this.sandbox.id) throw new ErrVMNotFound(id);
    await this.sandbox.close();
  }

  async close(): Promise<void> {
    await this.sandbox.close();
  }

  private view(): HostedSandbox {
    const c = this.sandbox.config;
    return {
      id: this.sandbox.id,
      createdAt: this.createdAt,
      status: this.stopped ? "stopped" : this.sandbox.running ? "running" : "stopping",
      image: c.image,
      vcpus: c.vcpuCount,
      memoryMb: c.memoryMb,
      config: {
        cpus: c.cpus,
        memoryMb: c.memoryMb,
        diskSizeMb: c.diskSizeMb,
        timeoutSeconds: c.timeoutSeconds,
        hostname: c.hostname,
        ...(c.workdir !== undefined ? { workdir: c.workdir } : {}),
        ...(c.user !== undefined ? { user: c.user } : {}),
        privileged: c.privileged,
        accel: this.sandbox.accel,
        envNames: Object.keys(c.env).sort(),
        network: {
          intercept: c.networkIntercept,
          // As it is now, not as planned (as a supervisor keeps its record).
          allowedHosts: [...(this.liveAllowlist?.hosts ?? c.allowedHosts)],
          ...(this.liveAllowlist ? { approvedHosts: [...this.liveAllowlist.approved] } : {}),
          secretNames: c.secrets.map((s) => s.name),
        },
      },
      ...(this.stoppedReason !== undefined ? { lastError: this.stoppedReason } : {}),
    };
  }
}
