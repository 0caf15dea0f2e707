/**
 * Everything a sandbox reports about itself, in one owner: which exec did what (attribution
 * of network and file events), live approval or audit of hosts outside the allowlist, spans,
 * usage and the budgets that stop the sandbox. launch.ts wires its hooks into the network,
 * the mounts and the VM; VmSandbox asks it for exec bookkeeping, usage and decisions.
 */
import type { GuestAgent } from "../channel/index.js";
import type { SandboxPlan } from "../config/index.js";
import { ErrBudgetExceeded, ErrNotFound, type WheellockError } from "../errors.js";
import type {
  HostAllowlist,
  NetworkEventInfo,
  ProxyHooks,
  RequestOutcome,
  Upstream,
} from "../net/index.js";
import {
  ApprovalQueue,
  Attributor,
  SandboxTracer,
  UsageMeter,
  type ApprovalDecision,
  type BlockedRequest,
  type ExecAttribution,
  type HostSample,
  type SandboxUsage,
} from "../observe/index.js";
import { processCpuSeconds, processPeakRssBytes, settledWithin } from "../util/index.js";
import type { VfsCaller } from "../vfs/index.js";
import type { EventHub, FileEventInfo } from "./events.js";
import { meteredUpstream } from "./metered-upstream.js";
import { policyErrorCode } from "./network-event-error.js";

/** The proxy's hooks, and the request budget for the HTTP policy. */
export interface InterceptHooks extends ProxyHooks {
  /** False once the request budget is spent. */
  admitRequest(): boolean;
}

/** How often the CPU budget is checked. */
const CPU_CHECK_MS = 1000;
/** How long `usage()` waits for the guest's own figures. */
const GUEST_USAGE_TIMEOUT_MS = 1000;

export class SandboxObserver {
  /** Every exec this sandbox started (stream ids): the only ones attribution may name. */
  private readonly execIds = new Set<number>();
  readonly attributor = new Attributor({ isKnownExec: (id) => this.execIds.has(id) });
  readonly meter: UsageMeter;
  readonly tracer: SandboxTracer;
  private readonly approvals: ApprovalQueue | undefined;
  private agent: GuestAgent | undefined;
  private qemuPid: number | undefined;
  private allowlist: HostAllowlist | undefined;
  private sample: HostSample = { cpuSeconds: 0, peakMemoryBytes: 0, diskWrittenBytes: 0 };
  private cpuTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Why a budget stopped the sandbox, once one did. */
  private budgetReason: string | undefined;
  /** Reports the requests still in flight (the proxy's), before the final usage. */
  private endInFlight: ((outcome: RequestOutcome) => void) | undefined;

  constructor(
    private readonly plan: SandboxPlan,
    private readonly hub: EventHub,
    /** Ends the sandbox (a budget was spent). */
    private readonly stop: (err: WheellockError) => void,
    /** False: nothing is attributed (the bench's baseline). */
    private readonly attribution = true,
  ) {
    this.meter = new UsageMeter(plan.budgets);
    this.tracer = new SandboxTracer(plan.id, plan.tracePropagation);
    if (plan.approval.enabled) {
      const decide = plan.onBlockedRequest;
      this.approvals = new ApprovalQueue(plan.approval, {
        ...(decide ? { decide } : {}),
        allow: (entry) => this.allowlist?.add([entry], { approved: true }),
        emit: (approval) => this.hub.emit({ type: "approval", timestamp: new Date(), approval }),
      });
    }
  }

  /** Hooks for the intercepting proxy. */
  interceptHooks(): InterceptHooks {
    const hooks: InterceptHooks = {
      ...(this.attribution
        ? {
            // A stamped SYN names its process: answered from what is known when it can be.
            origin: (flow) => this.attributor.forFlow(flow.protocol, flow.guestPort, flow.stamp),
          }
        : {}),
      admitRequest: () => this.meter.admitRequest(),
    };
    if (this.approvals) {
      const approvals = this.approvals;
      hooks.onHostRefused = (request, gone) => approvals.hold(request, gone);
    } else if (this.plan.networkAudit) {
      hooks.onHostRefused = (request) => ({
        allow: true,
        note: { audit: { code: "host_not_allowed", reason: request.reason } },
      });
    }
    if (this.plan.tracePropagation)
      hooks.upstreamHeaders = (requestId, _head, origin) =>
        this.tracer.upstreamHeaders(requestId, origin);
    return hooks;
  }

  /** The upstream with its bytes counted (the egress budget). */
  meterUpstream(upstream: Upstream): Upstream {
    return meteredUpstream(upstream, (bytes) => {
      if (this.meter.flowBytes(bytes)) {
        const max = this.plan.budgets.maxEgressBytes ?? 0;
        this.overBudget(`its network flows moved more than ${max} bytes (maxEgressBytes)`);
      }
    });
  }

  networkEvent(info: NetworkEventInfo): void {
    this.meter.network(info);
    this.tracer.request(info);
    const errorCode = policyErrorCode(info);
    this.hub.emit({
      type: "network",
      timestamp: new Date(),
      network: errorCode ? { ...info, errorCode } : info,
    });
  }

  fileEvent(file: FileEventInfo): void {
    if (file.op === "write" && file.errno === 0) this.meter.mountWrite(file.size ?? 0);
    const emit = (attribution: ExecAttribution | undefined): void => {
      this.tracer.fileOp(attribution?.execId, file);
      this.hub.emit({
        type: "file",
        timestamp: new Date(),
        file: attribution ? { ...file, attribution } : file,
      });
    };
    // SDK file calls have no guest caller.
    const answer =
      file.pid !== undefined && this.attribution ? this.attributor.forPid(file.pid) : undefined;
    if (answer instanceof Promise) void answer.then(emit);
    else emit(answer);
  }

  /**
   * Holds a guest file request from a process not seen lately until its exec is known: the
   * process waits for the reply, so it is alive to be asked about (one round trip per new
   * process, none after).
   */
  beforeFileRequest(caller: VfsCaller): Promise<void> | undefined {
    if (!this.attribution) return undefined;
    const answer = this.attributor.forPid(caller.pid);
    return answer instanceof Promise ? answer.then(() => undefined) : undefined;
  }

  /** The VM is up: attribution, usage sampling and the CPU budget start. */
  attach(agent: GuestAgent, qemuPid: number, allowlist: HostAllowlist | undefined): void {
    this.agent = agent;
    this.qemuPid = qemuPid;
    this.allowlist = allowlist;
    this.attributor.connect((keys) => agent.attribute(keys));
    const max = this.plan.budgets.maxCpuSeconds;
    if (max !== undefined) {
      this.cpuTimer = setInterval(() => {
        const cpu = processCpuSeconds(qemuPid);
        if (cpu !== undefined && cpu > max)
          this.overBudget(
            `its VM used ${cpu.toFixed(1)} s of CPU time, more than ${max} s (maxCpuSeconds)`,
          );
      }, CPU_CHECK_MS);
      this.cpuTimer.unref();
    }
  }

  /** Bookkeeping of one command: usage, its span; `ended` once it exits (or fails). */
  execStarted(
    execId: number,
    argv: readonly string[],
  ): {
    ended(exitCode: number | undefined, durationMs: number, error?: Error): void;
  } {
    this.execIds.add(execId);
    this.meter.execStarted();
    const span = this.tracer.startExec(execId, argv);
    let done = false;
    return {
      ended: (exitCode, durationMs, error) => {
        if (done) return;
        done = true;
        this.meter.execEnded(durationMs);
        span.end(exitCode, error);
      },
    };
  }

  pendingRequests(): BlockedRequest[] {
    return this.approvals?.pending() ?? [];
  }

  decideRequest(requestId: number, decision: ApprovalDecision): void {
    if (!this.approvals?.decide(requestId, decision))
      throw new ErrNotFound(`request ${requestId} is not waiting for approval`);
  }

  /** What the sandbox has used; host figures are sampled now, the guest is asked (bounded). */
  async usage(): Promise<SandboxUsage> {
    await this.refreshSample();
    return this.meter.snapshot(this.sample);
  }

  /**
   * Before the VM goes: the final usage event (figures sampled while QEMU and the agent still
   * run; none when `finalUsage` is false), pending approvals denied, spans ended.
   */
  async finish(finalUsage = true): Promise<SandboxUsage | undefined> {
    if (this.stopped) return undefined;
    this.stopped = true;
    clearInterval(this.cpuTimer);
    this.approvals?.close();
    // The request that spent the budget (or any still moving) is counted and has its event.
    this.endInFlight?.(
      this.budgetReason !== undefined
        ? { blocked: true, code: "budget_exceeded", reason: this.budgetReason }
        : { reason: "the sandbox stopped before the request ended" },
    );
    // Without `finalUsage` nobody can read the figures: not asking the guest for them saves
    // a round trip before the VM can go (a CLI `run`'s close).
    const usage = finalUsage ? await this.usage() : undefined;
    if (usage) this.hub.emit({ type: "usage", timestamp: new Date(), usage });
    this.attributor.close();
    this.tracer.close();
    return usage;
  }

  /** Called by `finish` first: the intercepting proxy reports its requests in flight. */
  onFinish(endInFlight: (outcome: RequestOutcome) => void): void {
    this.endInFlight = endInFlight;
  }

  private overBudget(why: string): void {
    if (this.stopped) return;
    this.budgetReason ??= `sandbox ${this.plan.id} stopped: ${why}`;
    this.stop(new ErrBudgetExceeded(`sandbox ${this.plan.id} stopped: ${why}`));
  }

  private async refreshSample(): Promise<void> {
    const pid = this.qemuPid;
    if (pid !== undefined) {
      this.sample.cpuSeconds = processCpuSeconds(pid) ?? this.sample.cpuSeconds;
      this.sample.peakMemoryBytes = processPeakRssBytes(pid) ?? this.sample.peakMemoryBytes;
    }
    const agent = this.agent;
    if (agent && !agent.closed) {
      const guest = await settledWithin(agent.usage(), GUEST_USAGE_TIMEOUT_MS);
      if (guest) this.sample.diskWrittenBytes = guest.diskWrittenBytes;
    }
  }
}
